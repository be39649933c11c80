-- wrk script: POST one valid email per request, report a JSON summary on stdout.
-- Subject and recipient carry a counter: every message is distinct, and no cache of
-- validated recipients can flatter the figures (the sender repeats, as in real traffic).
local counter = 0
-- The API key, when the API runs with keys (BENCH_KEY); none for the baseline.
local key = os.getenv("BENCH_KEY")
local headers = {["Content-Type"] = "application/json"}
if key then headers["Authorization"] = "Bearer " .. key end
local body_template = '{"from": "bench@example.com", "to": ["someone%d@example.com"], ' ..
  '"subject": "wrk %d", "message": "' .. string.rep("Hello from the limbo benchmark. ", 8) .. '"}'

request = function()
  counter = counter + 1
  return wrk.format("POST", "/v1/mail", headers,
                    string.format(body_template, counter, counter))
end

done = function(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "bytes": %d, "non_2xx": %d, ' ..
    '"connect_errors": %d, "read_errors": %d, "write_errors": %d, "timeouts": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %f}\n',
    summary.requests, summary.duration, summary.bytes, errors.status, errors.connect,
    errors.read, errors.write, errors.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean))
end
