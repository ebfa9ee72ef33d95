-- wrk script: every write carries DEPTH pipelined GET requests (default 16), so each connection
-- keeps DEPTH requests in flight. wrk counts each response, so req/s counts requests, not batches;
-- its latency figures are per batch write.
--   wrk -t1 -c64 -d5s -s bench/pipeline.lua http://127.0.0.1:8000/ -- 16

init = function(args)
    local depth = tonumber(args[1]) or 16
    local batch = {}
    for i = 1, depth do
        batch[i] = wrk.format()
    end
    requests = table.concat(batch)
end

request = function()
    return requests
end
