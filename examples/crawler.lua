-- A web crawler's fan-out, over small HTTP/1.0 servers that the example
-- starts on 127.0.0.1 itself: a few sites whose pages link to each other
-- (and to a missing page, and to a site that is down). A fixed number of
-- fetcher goroutines take URLs from a channel; one goroutine, the only one
-- that touches the set of URLs seen, hands out each URL once and counts
-- the fetches in flight, so it knows when the crawl is over. The results
-- are printed sorted by URL, so the output is the same on every run.
--
--   lua5.4 examples/crawler.lua [fetchers, default 4]
local g = require "goroutines"

local nfetchers = tonumber(arg and arg[1]) or 4

-- The sites: path -> {title, links}; a link is "site/path".
local sites = {
  site1 = {
    ["/"] = {"Home", {"site1/about", "site2/", "site3/blog"}},
    ["/about"] = {"About us", {"site1/", "site2/team"}},
  },
  site2 = {
    ["/"] = {"Site two", {"site2/team", "site3/", "site1/missing"}},
    ["/team"] = {"The team", {"site1/about", "site4/"}},
  },
  site3 = {
    ["/"] = {"A blog", {"site3/blog", "site3/blog/1"}},
    ["/blog"] = {"Posts", {"site3/blog/1", "site3/blog/2", "site1/"}},
    ["/blog/1"] = {"First post", {"site3/blog"}},
    ["/blog/2"] = {"Second post", {"site3/blog", "site2/team"}},
  },
}

-- --- the servers ------------------------------------------------------------

-- Serves one request: "GET <path> HTTP/1.0", headers, an empty line; the
-- reply is the page, or 404.
local requests = 0   -- served, over all the sites: each URL once

local function handle(conn, page_of)
  requests = requests + 1
  conn:set_deadline(g.time.now() + 10)
  local request = conn:read("l")
  local path = request and request:match("^GET (%S+) HTTP/1%.[01]\r?$")
  repeat local line = conn:read("l") until not line or line == "" or line == "\r"
  local body = path and page_of(path)
  if body then
    conn:write("HTTP/1.0 200 OK\r\nContent-Type: text/html\r\nContent-Length: ",
               #body, "\r\n\r\n", body)
  else
    conn:write("HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n")
  end
  conn:close()
end

local function serve(ln, page_of)
  while true do
    local conn = ln:accept()
    if not conn then return end      -- the listener closed
    g.go(handle, conn, page_of)
  end
end

-- Starts the sites (and reserves a port for site4, which stays down);
-- returns the address of each site and the function that stops them.
local function start_sites()
  local addr, listeners = {}, {}
  for name in pairs(sites) do
    listeners[name] = assert(g.net.listen("tcp", "127.0.0.1:0"))
    addr[name] = listeners[name]:addr()
  end
  local down = assert(g.net.listen("tcp", "127.0.0.1:0"))
  addr.site4 = down:addr()
  down:close()                       -- nothing listens there now
  local function url(link)
    local site, path = link:match("^(site%d)(/.*)$")
    return "http://" .. addr[site] .. path
  end
  for name, pages in pairs(sites) do
    local function page_of(path)
      local p = pages[path]
      if not p then return nil end
      local html = {"<html><head><title>", p[1], "</title></head><body>\n"}
      for _, link in ipairs(p[2]) do
        html[#html + 1] = ('<a href="%s">%s</a>\n'):format(url(link), link)
      end
      html[#html + 1] = "</body></html>\n"
      return table.concat(html)
    end
    g.go(serve, listeners[name], page_of)
  end
  return addr, url, function()
    for _, ln in pairs(listeners) do ln:close() end
  end
end

-- --- the crawler ------------------------------------------------------------

-- Fetches url: status, title and the links of the page; or nil and the
-- error.
local function fetch(url)
  local host, path = url:match("^http://([^/]+)(/.*)$")
  local conn, err = g.net.dial("tcp", host, 5)
  if not conn then return nil, err end
  conn:set_deadline(g.time.now() + 10)
  conn:write("GET ", path, " HTTP/1.0\r\nHost: ", host, "\r\n\r\n")
  local status = conn:read("l")
  local length = 0
  while true do
    local line = conn:read("l")
    if not line or line == "\r" or line == "" then break end
    length = tonumber(line:match("^[Cc]ontent%-[Ll]ength: *(%d+)")) or length
  end
  local parts, got = {}, 0
  while got < length do              -- read(n) returns what has come, up to n
    local part = conn:read(length - got)
    if not part then break end
    parts[#parts + 1] = part
    got = got + #part
  end
  conn:close()
  local body = table.concat(parts)
  local code = status and tonumber(status:match("^HTTP/1%.[01] (%d%d%d)"))
  if not code then return nil, "bad reply: " .. tostring(status) end
  local links = {}
  for link in body:gmatch('<a href="([^"]+)"') do links[#links + 1] = link end
  return {code = code, title = body:match("<title>(.-)</title>"), links = links}
end

-- Crawls from start with n fetchers; returns the results by URL.
local function crawl(start, n)
  local work, results = g.chan(), g.chan()
  local wg = g.sync.waitgroup()
  for _ = 1, n do
    wg:add(1)
    g.go(function()
      for url in work:range() do
        local page, err = fetch(url)
        results:send({url = url, page = page, err = err})
      end
      wg:done()
    end)
  end
  -- The coordinator: the only goroutine that reads or writes seen. It
  -- queues each new URL once, and feeds the fetchers while it collects.
  local seen, queue, inflight, byurl = {[start] = true}, {start}, 0, {}
  while #queue > 0 or inflight > 0 do
    local cases = {results:on_recv(function(r)
      inflight = inflight - 1
      byurl[r.url] = r
      for _, link in ipairs(r.page and r.page.links or {}) do
        if not seen[link] then
          seen[link] = true
          queue[#queue + 1] = link
        end
      end
    end)}
    if #queue > 0 then
      cases[2] = work:on_send(queue[1], function()
        table.remove(queue, 1)
        inflight = inflight + 1
      end)
    end
    g.select(cases)
  end
  work:close()
  wg:wait()
  return byurl
end

local addr, url, stop = start_sites()
-- Names the sites in what is printed: their ports change on every run.
local function named(s)
  for name, a in pairs(addr) do
    s = s:gsub(a:gsub("%p", "%%%0"), name)
  end
  return (s:gsub("http://", ""))
end

local byurl = crawl(url("site1/"), nfetchers)
stop()
local urls = {}
for u in pairs(byurl) do urls[#urls + 1] = named(u) end
table.sort(urls)
local ok, broken = 0, 0
print(("crawled %d URLs from site1/ with %d fetchers:"):format(#urls, nfetchers))
for _, u in ipairs(urls) do
  local r = byurl[url(u)]
  if r.page and r.page.code == 200 then
    ok = ok + 1
    local n = #r.page.links
    print(("  %-14s %d  %-12s %d link%s"):format(u, r.page.code, r.page.title,
                                                n, n == 1 and "" or "s"))
  else
    broken = broken + 1
    print(("  %-14s %s"):format(u, r.page and r.page.code or named(r.err)))
  end
end
print(("%d pages, %d broken links, %d requests served"):format(ok, broken,
                                                             requests))
