"""An address field is exactly one mailbox, and limbo writes it back from its parts."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from limbo_shared.addresses import (
    _PLAIN_ADDRESS,
    InvalidMailbox,
    Mailbox,
    _parse_header,
    parse_mailbox,
)


@pytest.mark.parametrize(
    "value",
    [
        # The display name is two more addresses to a provider: three recipients.
        "x1@evil.example, x2@evil.example <ok@example.com>",
        "a@example.com, b@example.com",
        "a@example.com; b@example.com",
        "a@example.com <b@example.com>",
        "a <b@example.com> c@example.com",
        "group: a@example.com, b@example.com;",
        "a@example.com,",
        "",
        "not-an-address",
        "a@example.com\r\nBcc: victim@example.com",
        '"bell\x07" <a@example.com>',
    ],
)
def test_anything_but_exactly_one_mailbox_is_refused(value: str) -> None:
    with pytest.raises(InvalidMailbox):
        parse_mailbox(value)


@pytest.mark.parametrize(
    "value,name,addr",
    [
        ("a@example.com", "", "a@example.com"),
        ("<a@example.com>", "", "a@example.com"),
        ("Ann Example <a@example.com>", "Ann Example", "a@example.com"),
        ('"x1@evil.example, x2" <ok@example.com>', "x1@evil.example, x2", "ok@example.com"),
        ("Mr. X <a@example.com>", "Mr. X", "a@example.com"),
        ("José <josé@Bücher.example>", "José", "josé@bücher.example"),
        ("a@example.com (a comment)", "", "a@example.com"),
    ],
)
def test_one_mailbox_is_parsed_into_its_parts(value: str, name: str, addr: str) -> None:
    assert parse_mailbox(value) == Mailbox(display_name=name, addr_spec=addr)


def test_a_name_that_needs_quoting_is_quoted_by_limbo() -> None:
    mailbox = parse_mailbox('"x1@evil.example, x2" <ok@example.com>')
    assert mailbox.formatted == '"x1@evil.example, x2" <ok@example.com>'
    assert parse_mailbox('"say \\"hi\\"" <a@example.com>').formatted == (
        '"say \\"hi\\"" <a@example.com>'
    )
    assert parse_mailbox("Ann <a@example.com>").formatted == "Ann <a@example.com>"


def test_ascii_form_encodes_the_name_and_the_domain() -> None:
    mailbox = parse_mailbox("José <jose@bücher.example>")
    assert mailbox.ascii() == "=?utf-8?b?Sm9zw6k=?= <jose@xn--bcher-kva.example>"
    with pytest.raises(InvalidMailbox, match="SMTPUTF8"):
        parse_mailbox("josé@example.com").ascii()


NAMES = st.text(st.characters(exclude_categories=("Cs", "Cc")), min_size=1, max_size=30)


@given(name=NAMES, local=st.from_regex(r"[a-z0-9]{1,10}", fullmatch=True))
def test_what_limbo_writes_parses_back_to_the_same_one_mailbox(name: str, local: str) -> None:
    # Whatever the name holds (commas, quotes, angle brackets, @), written by limbo it is
    # still one mailbox with the same parts: nothing in a name becomes a recipient.
    assume(name.strip() == name and "  " not in name)
    mailbox = Mailbox(display_name=name, addr_spec=f"{local}@example.com")
    assert parse_mailbox(mailbox.formatted) == mailbox
    assert parse_mailbox(mailbox.ascii()).addr_spec == mailbox.addr_spec


_ATOM_TEXT = st.text(alphabet="abcxyzABC0189!#$%&'*+/=?^_`{|}~-", min_size=1, max_size=8)


@given(
    st.lists(_ATOM_TEXT, min_size=1, max_size=3),
    st.lists(_ATOM_TEXT, min_size=1, max_size=3),
)
def test_a_bare_address_reads_as_the_rfc_5322_parser_reads_it(
    local: list[str], domain: list[str]
) -> None:
    """The shortcut for plain `dot-atom@dot-atom` answers what the full parser answers."""
    value = ".".join(local) + "@" + ".".join(domain)

    def reading(parse: object) -> object:
        try:
            return parse(value)  # type: ignore[operator]
        except InvalidMailbox as error:
            return str(error)

    assert _PLAIN_ADDRESS.fullmatch(value)
    assert reading(parse_mailbox.__wrapped__) == reading(_parse_header)
