local random = math.random
local function uuid()
  return string.gsub('xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx', '[xy]', function (c)
    local v = (c == 'x') and random(0, 0xf) or random(8, 0xb)
    return string.format('%x', v)
  end)
end
function init(args) math.randomseed(os.time() + math.floor(os.clock()*1000000) + math.random(1,100000)) end
local n = 0
request = function()
  n = n + 1
  local hdr = {}
  hdr["x-api-key"] = "bench-seed"
  hdr["Content-Type"] = "application/json"
  hdr["x-idempotency-key"] = uuid()
  return wrk.format("POST", "/customers", hdr, '{"name":"Acme Corp","customer_type":"business"}')
end
