-- The seeded random tests (spec/fuzz_*.lua), run briefly on fixed seeds in
-- a child process each (a crash fails one spec); `make fuzz` runs them for
-- longer under ASan with fresh seeds.

local h = require "spec.helpers"

local function fuzz (file, seed, rounds)
  return h.run_script(("arg = { %q, %q }\ndofile(%q)\n")
                      :format(seed, rounds, file), 120)
end

describe("select and channels across states, at random", function()
  for _, seed in ipairs { 1, 2, 3 } do
    it("deliver every value once (seed " .. seed .. ")", function()
      local out, err, code = fuzz("spec/fuzz_select.lua", seed, 15)
      assert.are.equal(0, code, out .. err)
      assert.is_true(h.has(out, "all delivered once"), out .. err)
    end)
  end
end)
