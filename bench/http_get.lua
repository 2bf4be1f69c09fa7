-- wrk script: GET request paths from a file, cycling (default-lens queries).
--
-- BENCH_PATHS   file with one request path (and query string) per line
-- BENCH_THREADS the -t given to wrk: thread k starts at line k
-- BENCH_API_KEY  optional: sent as X-API-Key on every request (bench/hardening.py)
-- BENCH_AGENT_ID optional: sent as X-Agent-Id (the reader's agent: its rate limit,
--                quota and metrics label)

local threads = {}
local next_id = 0

function setup(thread)
   thread:set("id", next_id)
   next_id = next_id + 1
   table.insert(threads, thread)
end

local requests_ = {}
local index = 0
local headers = {}
local api_key = os.getenv("BENCH_API_KEY") or ""
local agent_id = os.getenv("BENCH_AGENT_ID") or ""
if api_key ~= "" then
   headers["X-API-Key"] = api_key
end
if agent_id ~= "" then
   headers["X-Agent-Id"] = agent_id
end
ok = 0
other = 0

function init(args)
   for line in io.lines(os.getenv("BENCH_PATHS")) do
      table.insert(requests_, wrk.format("GET", line, headers))
   end
   index = id % #requests_
end

function request()
   index = index + 1
   if index > #requests_ then
      index = 1
   end
   return requests_[index]
end

function response(status, headers, body)
   if status == 200 then
      ok = ok + 1
   else
      other = other + 1
   end
end

function done(summary, latency, requests)
   local c, o = 0, 0
   for _, t in ipairs(threads) do
      c = c + t:get("ok")
      o = o + t:get("other")
   end
   io.write(string.format(
      'BENCH_JSON {"requests": %d, "ok": %d, "other": %d, "duration_us": %d, ' ..
      '"errors_connect": %d, "errors_read": %d, "errors_write": %d, "errors_status": %d, ' ..
      '"errors_timeout": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d}\n',
      summary.requests, c, o, summary.duration, summary.errors.connect, summary.errors.read,
      summary.errors.write, summary.errors.status, summary.errors.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
