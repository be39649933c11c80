# syntax=docker/dockerfile:1
# Every limbo image, from this one file and the repository root; --target says which
# command the image runs:
#   docker build --target api -t limbo-api .
#   docker build --target ses-worker -t limbo-ses-worker .
#   docker build --target mailgun-worker -t limbo-mailgun-worker .
#   docker build --target webhooks -t limbo-webhooks .
#   docker build --target events -t limbo-events .
#   docker build --build-arg PACKAGES=limbo-devtools --target devtools -t limbo-devtools .
# The five service images hold one virtual environment with all five services (PACKAGES'
# default), so they share every layer but their command: a node pulls the dependencies
# once for all of them, and a build makes them once. --build-arg PACKAGES=limbo-api (any
# one service) builds an image with only what that service needs, about 10 MB smaller.
# --build-arg EXTRAS=grpc adds the OTLP gRPC exporter to a service (about 20 MB).
# BASE must provide python3 (>= 3.11) and a CA bundle at /etc/ssl/certs; every stage
# uses it, so the virtual environment's interpreter path is the same in the final image.
ARG BASE=python:3.11-slim-bookworm
# Global, so each stage that declares it again gets this default.
ARG PACKAGES="limbo-api limbo-ses-worker limbo-mailgun-worker limbo-webhooks limbo-events"

FROM ${BASE} AS builder
ARG UV_VERSION=0.13.9
# The system trust store (not certifi's copy), so a build behind a TLS-inspecting proxy
# works when its CA bundle is mounted over /etc/ssl/certs/ca-certificates.crt.
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
RUN python3 -m venv /opt/uv && /opt/uv/bin/pip install --quiet "uv==${UV_VERSION}"
# uvloop's and aiohttp's wheels carry their extension modules' debug information (16 MB
# of each service image): binutils' strip, here in the builder only, takes it out. A base
# without strip or apt builds the same images with it left in.
RUN command -v strip >/dev/null \
    || { apt-get -o Acquire::http::Timeout=30 update -qq \
      && apt-get install -y -qq --no-install-recommends binutils >/dev/null \
      && rm -rf /var/lib/apt/lists/*; } \
    || echo "no strip in the base: the extension modules keep their debug information" >&2
WORKDIR /src
# Dependencies first, from the lock file only (downloads kept in a cache mount, shared by
# the images and never part of a layer): this layer is reused until uv.lock or a
# pyproject.toml changes. Every member's pyproject.toml is needed to read the workspace.
COPY pyproject.toml uv.lock ./
COPY shared/pyproject.toml shared/
COPY services/api/pyproject.toml services/api/
COPY services/ses-worker/pyproject.toml services/ses-worker/
COPY services/mailgun-worker/pyproject.toml services/mailgun-worker/
COPY services/webhooks/pyproject.toml services/webhooks/
COPY services/events/pyproject.toml services/events/
COPY devtools/pyproject.toml devtools/
# Declared only now: the first step that reads PACKAGES is the first one the service
# images and devtools do not share, so uv's installation and the lock file's layers are
# built once for all.
ARG PACKAGES
ARG EXTRAS=""
RUN test -n "${PACKAGES}" || { echo "--build-arg PACKAGES=limbo-<name> ... is empty" >&2; exit 1; }
RUN --mount=type=cache,target=/root/.cache/uv \
    /opt/uv/bin/uv sync --frozen --no-dev $(printf -- '--package %s ' ${PACKAGES}) \
      ${EXTRAS:+--extra "${EXTRAS}"} --no-install-workspace
# botocore carries the API models of every AWS service (~28 MB) and moto an emulator of
# each (~50 MB). A service calls SQS, SES v2, DynamoDB and S3 (offloaded payloads), and
# STS/SSO for credentials; the emulator (devtools) serves those and loads what they reach
# inside moto.
RUN site="$(echo /app/.venv/lib/python3*/site-packages)" \
    && keep="sqs sesv2 dynamodb s3 sts sso sso-oidc" \
    && if [ "${PACKAGES}" = limbo-devtools ]; then \
      keep="$keep ses iam s3 s3bucket_path sns events cloudwatch" \
      && for dir in "$site"/moto/*/; do \
        case " $keep core utilities moto_api moto_server " in \
          *" $(basename "$dir") "*) ;; \
          *) rm -rf "$dir" ;; \
        esac; \
      done; \
    fi \
    && for dir in "$site"/botocore/data/*/; do \
      case " $keep " in *" $(basename "$dir") "*) ;; *) rm -rf "$dir" ;; esac; \
    done \
    && rm -f /app/.venv/bin/activate* /app/.venv/bin/deactivate.bat /app/.venv/bin/pydoc.bat \
    && if command -v strip >/dev/null; then \
      find /app/.venv -name "*.so" -exec strip --strip-debug {} +; \
    fi
# devtools runs only the sink, limbo-moto and limbo-local-aws, none of which imports what
# limbo-shared brings for the services: uvloop and httptools (uvicorn falls back to
# asyncio and h11), aiohttp and its helpers (the API's SQS client, which devtools
# depends on but never starts), protobuf and the OTLP exporters (no tracing), dnspython
# (email-validator's deliverability check, never on), nor moto's docker and wrapt. And
# moto's copy of every AWS-managed IAM policy (9 MB with its bytecode) is read only with
# MOTO_IAM_LOAD_MANAGED_POLICIES=true: an empty set stands in. The import check below
# fails the build if moto stops loading without them.
RUN if [ "${PACKAGES}" = limbo-devtools ]; then \
      site="$(echo /app/.venv/lib/python3*/site-packages)" \
      && rm -rf "$site"/uvloop "$site"/uvloop-*.dist-info "$site"/httptools \
        "$site"/httptools-*.dist-info "$site"/google "$site"/protobuf-*.dist-info \
        "$site"/opentelemetry/proto "$site"/opentelemetry_proto-*.dist-info \
        "$site"/opentelemetry/exporter "$site"/opentelemetry_exporter_*.dist-info \
        "$site"/dns "$site"/dnspython-*.dist-info "$site"/docker "$site"/docker-*.dist-info \
        "$site"/wrapt "$site"/wrapt-*.dist-info \
        "$site"/aiohttp "$site"/aiohttp-*.dist-info "$site"/aiohappyeyeballs \
        "$site"/aiohappyeyeballs-*.dist-info "$site"/aiosignal "$site"/aiosignal-*.dist-info \
        "$site"/frozenlist "$site"/frozenlist-*.dist-info "$site"/multidict \
        "$site"/multidict-*.dist-info "$site"/propcache "$site"/propcache-*.dist-info \
        "$site"/yarl "$site"/yarl-*.dist-info \
      && echo 'aws_managed_policies_data = "{}"' > "$site"/moto/iam/aws_managed_policies.py \
      && rm -f "$site"/moto/iam/__pycache__/aws_managed_policies.* \
      && /app/.venv/bin/python -m compileall -q "$site"/moto/iam/aws_managed_policies.py \
      && /app/.venv/bin/python -c "import moto.backends, moto.moto_server.werkzeug_app; \
[moto.backends.get_backend(name) for name in ('sqs', 'sesv2', 'ses', 'dynamodb', 's3', 'sts', \
'iam', 'sns', 'events', 'cloudwatch')]"; \
    fi

# The workspace packages, installed as wheels (not editable) on top of the dependencies,
# so the final stage needs nothing from /src; uv installs only those PACKAGES depend on.
# Only their files go on: a code change rebuilds this stage and one small layer of the
# image, not the dependencies, the pruned base or the shared-library scan.
FROM builder AS workspace
ARG PACKAGES
ARG EXTRAS=""
COPY shared/ shared/
COPY services/ services/
COPY devtools/ devtools/
RUN --mount=type=cache,target=/root/.cache/uv \
    /opt/uv/bin/uv sync --frozen --no-dev $(printf -- '--package %s ' ${PACKAGES}) \
      ${EXTRAS:+--extra "${EXTRAS}"} --no-editable \
    && site="$(echo /app/.venv/lib/python3*/site-packages)" \
    && mkdir -p "/out$site" /out/app/.venv/bin \
    && cp -a "$site"/limbo_* "/out$site"/ \
    && cp -a /app/.venv/bin/limbo-* /out/app/.venv/bin/

# The base without what no limbo process uses at run time: the package manager, perl,
# the administration tools (/usr/sbin), glibc's charset converters and locales, time
# zones (limbo keeps time in UTC), pip's wheels for new venvs, the interpreter's test
# suite and tools; then every shared library that no remaining program or interpreter
# module links against. It depends on no PACKAGES, so the six images build it once.
# Wheels link against glibc's own libraries, libgcc_s and libstdc++ (C++ extensions such
# as frozenlist); those are kept whatever the base's programs need. The check in the
# image stage fails the build if a package needs a library removed here.
FROM ${BASE} AS pruned
RUN rm -rf /usr/bin/apt* /usr/lib/apt /var/lib/apt /var/cache/apt /etc/apt \
      /usr/bin/dpkg* /var/lib/dpkg /var/log/* /usr/share/lintian /usr/share/bash-completion \
      /usr/bin/perl* /usr/lib/*-linux-gnu/perl* /usr/share/perl* /usr/sbin/* \
      /usr/bin/gpgv /usr/share/keyrings /usr/bin/localedef /usr/lib/locale \
      /usr/lib/*-linux-gnu/gconv /usr/lib/*-linux-gnu/security \
      /usr/share/python-wheels /usr/share/doc /usr/share/man /usr/share/info \
      /usr/share/zoneinfo \
      /usr/lib/python3*/test /usr/lib/python3*/ensurepip /usr/lib/python3*/lib2to3 \
      /usr/lib/python3*/idlelib /usr/lib/python3*/tkinter /usr/lib/python3*/pydoc_data \
      /usr/lib/python3*/lib-dynload/_dbm.* \
      /usr/local/lib/python3*/test /usr/local/lib/python3*/ensurepip \
      /usr/local/lib/python3*/lib2to3 /usr/local/lib/python3*/idlelib \
      /usr/local/lib/python3*/tkinter /usr/local/lib/python3*/pydoc_data \
      /usr/local/lib/python3*/lib-dynload/_dbm.* \
    && needed="$(for elf in /usr/bin/* /usr/local/bin/* /usr/lib/python3*/lib-dynload/*.so \
          /usr/local/lib/python3*/lib-dynload/*.so; do \
          ldd "$elf" 2>/dev/null; \
        done | sed -n 's|.*=> \(/[^ ]*\).*|\1|p' | xargs -r readlink -f | sort -u)" \
    && for lib in /usr/lib/*-linux-gnu/lib*.so*; do \
      case "$lib" in \
        */libgcc_s.so*|*/libstdc++.so*|*/libnss_*|*/libresolv.so*|*/libm.so*|*/libdl.so*) continue ;; \
        */libpthread.so*|*/librt.so*|*/libc.so*) continue ;; \
      esac; \
      echo "$needed" | grep -qx "$(readlink -f "$lib")" || rm -f "$lib"; \
    done

# Copied into an empty image, so what was removed is really gone (not hidden under a
# later layer); shared by every image as their first layer.
FROM scratch AS slim
COPY --from=pruned / /

FROM slim AS image
COPY --from=builder /app/.venv /app/.venv
COPY --from=workspace /out/ /
# HOME under /tmp: boto3 (and moto) look for ~/.aws, and the root filesystem is read-only.
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    LOG_FORMAT=json
# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
# Fails the build when the pruning above took a library something still links against.
RUN for so in /usr/lib/python3*/lib-dynload/*.so /usr/local/lib/python3*/lib-dynload/*.so \
      $(find /app/.venv -name "*.so"); do \
      [ ! -e "$so" ] || ! ldd "$so" | grep "not found" || { echo "broken: $so" >&2; exit 1; }; \
    done \
    && python3 -c "import ssl, pydantic_core, botocore.session; \
botocore.session.get_session().create_client('sqs', region_name='us-east-1')" \
    && { [ ! -d /app/.venv/lib/python3*/site-packages/uvloop ] || python3 -c "import uvloop"; }

FROM image AS api
ENV PORT=8080
EXPOSE 8080
ENTRYPOINT ["/app/.venv/bin/limbo-api"]

FROM image AS ses-worker
ENV PORT=9090
EXPOSE 9090
ENTRYPOINT ["/app/.venv/bin/limbo-ses-worker"]

FROM image AS mailgun-worker
ENV PORT=9090
EXPOSE 9090
ENTRYPOINT ["/app/.venv/bin/limbo-mailgun-worker"]

FROM image AS webhooks
ENV PORT=9090
EXPOSE 9090
ENTRYPOINT ["/app/.venv/bin/limbo-webhooks"]

# Applies delivery events (SES via SNS, Mailgun webhooks) to the status table.
FROM image AS events
ENV PORT=9090
EXPOSE 9090
ENTRYPOINT ["/app/.venv/bin/limbo-events"]

# The in-cluster stand-ins for local development (never for production): the sink by
# default; the chart runs limbo-moto (the AWS emulator) and limbo-local-aws (its set-up)
# from the same image.
FROM image AS devtools
RUN test -x /app/.venv/bin/limbo-mailgun-sink \
    || { echo "build the devtools target with --build-arg PACKAGES=limbo-devtools" >&2; exit 1; }
ENV SINK_HOST=0.0.0.0 \
    SINK_PORT=8025
EXPOSE 5000 8025
CMD ["/app/.venv/bin/limbo-mailgun-sink"]
