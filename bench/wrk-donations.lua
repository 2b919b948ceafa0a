-- Donations from wrk (a load generator in its own process), for comparing with
-- `cishan bench donations`, whose clients share the server's process and cores.
--
--   cishan demo --db sqlite:///tmp/w/c.db --data-dir /tmp/w/data --no-serve
--   RUST_LOG=warn cishan serve --db sqlite:///tmp/w/c.db --data-dir /tmp/w/data --bind 127.0.0.1:18181 &
--   export TOKEN=$(curl -s -X POST http://127.0.0.1:18181/api/v1/sessions -H 'content-type: application/json' \
--       -d '{"username":"admin","password":"cishan-demo-2021"}' | python3 -c 'import sys,json; print(json.load(sys.stdin)["token"])')
--   FUND=fnd_0001 wrk -t2 -c64 -d10s --latency -s bench/wrk-donations.lua http://127.0.0.1:18181
--
-- Every request has its own Idempotency-Key; count the donations in the database before and
-- after to check that every 201 was stored.
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  token = os.getenv("TOKEN")
  fund = os.getenv("FUND") or "fnd_0001"
  prefix = "wrk-" .. tostring(os.time()) .. "-" .. tid .. "-"
  counter = 0
end

function request()
  counter = counter + 1
  local body = '{"amount_fen":' .. (100 + (counter % 997) * 100) ..
      ',"fund_id":"' .. fund .. '","channel":"cash","donor_name":"基准测试"}'
  return wrk.format("POST", "/api/v1/donations", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. token,
    ["Idempotency-Key"] = prefix .. counter,
  }, body)
end

function done(summary, latency, requests)
  io.write(string.format("non-2xx or 3xx answers: %d, socket errors: %d\n",
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
