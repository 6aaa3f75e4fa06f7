---@meta
-- host_test.d.lua: the globals of a *_test.lua file under `host test`
-- (tests/HOST_TEST_FORMAT.md). Definitions only.

---@class host.RunOpts
---@field dry_run? boolean
---@field inputs? table<string, string> name -> path, relative to the test file
---@field vars? table<string, string>
---@field min_confidence? host.Confidence
---@field commit? "atomic"|"batch"
---@field batch_size? integer
---@field limit? integer
---@field libs? string[]

---@class host.RunResult
---@field exit integer the exit code (RECIPE_API.md section 8)
---@field report table|nil the decoded JSON report
---@field markdown string the Markdown report
---@field output string stdout and stderr

---@class host.CommandResult
---@field exit integer
---@field output string

---Declares a test; each test gets a fresh, empty database.
---@param name string
---@param fn fun()
function test(name, fn) end

---Executes SQL files (relative to the test file) in the test database.
---@param ... string
function fixture(...) end

---Runs SQL (read-write) with $1..$n bound; the rows.
---@param text string
---@param ... any
---@return table<string, any>[]
function sql(text, ...) end

---Runs `host run RECIPE` (relative to the test file) against the test database.
---@param recipe string
---@param opts? host.RunOpts
---@return host.RunResult
function run(recipe, opts) end

---Runs `host revert RUN_ID`.
---@param run_id string
---@param opts? { dry_run?: boolean }
---@return host.CommandResult
function revert(run_id, opts) end

---Runs any host subcommand; --db is added.
---@param args string[]
---@return host.CommandResult
function host(args) end

---Deep equality assertion.
---@param actual any
---@param expected any
---@param msg? string
function eq(actual, expected, msg) end

---Prints text (shown with `host test --verbose`).
---@param text string
function show(text) end
