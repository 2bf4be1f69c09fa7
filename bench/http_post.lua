-- wrk script: POST pre-signed bodies, one per request, never the same body twice.
--
-- BENCH_BODIES  file with one JSON body per line (written by bench/http_load.py)
-- BENCH_PATH    request path (/v1/assert or /v1/assert/batch)
-- BENCH_THREADS the -t given to wrk: thread k sends lines k, k+T, k+2T, ...
-- BENCH_API_KEY optional: sent as X-API-Key on every request (bench/hardening.py)
-- When a thread runs out of bodies it starts over (the server then answers 200
-- "exists"); the summary counts 201/207 answers separately so the caller can tell.

local threads = {}
local next_id = 0

function setup(thread)
   thread:set("id", next_id)
   next_id = next_id + 1
   table.insert(threads, thread)
end

local bodies = {}
local index = 0
local path = os.getenv("BENCH_PATH") or "/v1/assert"
local headers = { ["Content-Type"] = "application/json" }
local api_key = os.getenv("BENCH_API_KEY") or ""
if api_key ~= "" then
   headers["X-API-Key"] = api_key
end
created = 0
other = 0
wrapped = 0

function init(args)
   local file = os.getenv("BENCH_BODIES")
   local total = tonumber(os.getenv("BENCH_THREADS") or "1")
   local n = 0
   for line in io.lines(file) do
      if n % total == id then
         table.insert(bodies, wrk.format("POST", path, headers, line))
      end
      n = n + 1
   end
end

function request()
   index = index + 1
   if index > #bodies then
      index = 1
      wrapped = wrapped + 1
   end
   return bodies[index]
end

function response(status, headers, body)
   if status == 201 or status == 207 then
      created = created + 1
   else
      other = other + 1
   end
end

function done(summary, latency, requests)
   local c, o, w = 0, 0, 0
   for _, t in ipairs(threads) do
      c = c + t:get("created")
      o = o + t:get("other")
      w = w + t:get("wrapped")
   end
   io.write(string.format(
      'BENCH_JSON {"requests": %d, "created": %d, "other": %d, "wrapped": %d, ' ..
      '"duration_us": %d, "errors_connect": %d, "errors_read": %d, "errors_write": %d, ' ..
      '"errors_status": %d, "errors_timeout": %d, "p50_us": %d, "p90_us": %d, ' ..
      '"p99_us": %d, "max_us": %d}\n',
      summary.requests, c, o, w, summary.duration, summary.errors.connect,
      summary.errors.read, summary.errors.write, summary.errors.status,
      summary.errors.timeout, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency.max))
end
