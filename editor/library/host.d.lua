---@meta
-- host.d.lua: lua-language-server annotations of every global a recipe sees
-- (RECIPE_API.md sections 1, 2, 3 and 7). Definitions only: never loaded by the
-- host. tests/editor/annotations_test.cpp checks that it names every global the
-- host registers (bindings/primitives.cpp, bindings/verify_helpers.cpp).
--
-- Use: a .luarc.json with "workspace.library": ["/usr/share/pg-backfill-host/editor/library"]
-- (or editor/library in a clone), see editor/luarc.json.

---A row as a recipe receives it: column name -> value. SQL NULL is nil; bool ->
---boolean; int2/int4/float4/float8 -> number; int8 -> number up to 2^53, else
---string; everything else (numeric, text, uuid, dates, json) -> its text form.
---@alias host.Row table<string, any>

---The value of a `where` entry: a value (=), EMPTY, NOT_EMPTY, or an array (IN).
---@alias host.FilterValue string|number|boolean|host.Marker|any[]

---A filter: column -> value/EMPTY/NOT_EMPTY/array, or a read-only SQL predicate.
---@alias host.Where table<string, host.FilterValue>|string

---@alias host.Confidence "high"|"medium"|"low"

---@alias host.Empty
---| "blank" # NULL, or for text types a string of only white space (default)
---| "null"  # NULL only

---A filter marker (light userdata): EMPTY or NOT_EMPTY.
---@class host.Marker

---Options of every write.
---@class host.WriteOpts
---@field confidence? host.Confidence below --min-confidence (default high) the write becomes a review item
---@field reason? string kept in the ledger with the change
---@field empty? host.Empty what counts as empty (default "blank")
---@field table? string the table of a row table the recipe built itself

---Options of insert_if_absent and fill_from.
---@class host.InsertOpts: host.WriteOpts
---@field key? string|string[] the columns that decide "already there" (default the primary key)

---@class host.ReadOpts
---@field columns? string[] the columns to read (default all)
---@field order_by? string|string[] `"col"` or `{"col", "desc"}`

---@class host.ReadAllOpts: host.ReadOpts
---@field limit? integer an error past it (default 10,000)

---The table a recipe file returns (RECIPE_API.md section 1).
---@class host.Recipe
---@field name string required, [a-z0-9._-]+, unique per database
---@field version? string|number recorded in the ledger
---@field description? string
---@field table? string the row source: a table (schema-qualified allowed) ...
---@field input? string ... or a named input file (--input NAME=path.csv|.jsonl)
---@field key? string|string[] scan key (default the primary key; composite allowed)
---@field columns? string[] columns to read (default all; the key is always read)
---@field where? host.Where filter pushed into the scan
---@field writes? table<string, string[]|"*"> table -> columns it may write, or "*" for all; required for any write
---@field batch_size? integer rows per batch, 1 to 1,000,000
---@field pause_when? string SQL returning one boolean: no batch starts while it is true (see require "throttle")
---@field commit? "atomic"|"batch" one transaction for the run (default), or one per batch (resumable)
---@field on_error? "skip"|"fail" "skip": record a failing row and go on
---@field each fun(row: host.Row) called once per source row
---@field verify? fun() post-conditions, run after the writes

---The first matching row, or nil.
---@param table string
---@param where host.Where
---@param opts? host.ReadOpts
---@return host.Row|nil
function read(table, where, opts) end

---Every matching row (an error past opts.limit, default 10,000).
---@param table string
---@param where host.Where
---@param opts? host.ReadAllOpts
---@return host.Row[]
function read_all(table, where, opts) end

---Rows of a read-only SQL statement with $1..$n bound to the extra arguments.
---It can never persist a change; at most 10,000 rows.
---@param sql string
---@param ... any
---@return host.Row[]
function query(sql, ...) end

---Sets `column = value` on that row only if the column is empty (checked again in
---SQL when the write lands). false when the row already holds a value (protected).
---@param row host.Row
---@param column string
---@param value any
---@param opts? host.WriteOpts
---@return boolean queued
function patch_if_empty(row, column, value, opts) end

---Compare-and-set: writes only where the current value equals `expected` (nil = empty).
---@param row host.Row
---@param column string
---@param expected any
---@param value any
---@param opts? host.WriteOpts
---@return boolean queued
function patch_if(row, column, expected, value, opts) end

---Inserts a row unless one with the same key exists; never changes an existing row.
---@param table string
---@param values table<string, any>
---@param opts? host.InsertOpts
---@return boolean queued
function insert_if_absent(table, values, opts) end

---Upsert that never overwrites: inserts the row, or fills only the empty columns of
---the existing one.
---@param table string
---@param values table<string, any>
---@param opts? host.InsertOpts
---@return boolean queued
function fill_from(table, values, opts) end

---A stable UUID (lower-case text, version 5) for a legacy id; nil in, nil out. A
---legacy id that is a UUID maps to its lower-case form. Entity names are [a-z0-9_]+.
---@param entity string
---@param legacy_id string|number|nil
---@return string|nil uuid
function map_id(entity, legacy_id) end

---Appends an audit event to the run's audit trail.
---@param event string
---@param data? table
function audit(event, data) end

---Records a proposed value for manual review; never written (confidence low).
---@param row host.Row
---@param column string
---@param value any
---@param reason string
function review(row, column, value, reason) end

---Recipe log lines, tagged with the recipe name.
---@class host.Log
log = {}

---@param ... any
function log.info(...) end

---@param ... any
function log.warn(...) end

---Read-only table of the `--var key=value` pairs (values are strings).
---@type table<string, string>
vars = {}

---Filter marker: the column is empty (NULL, or blank text unless empty = "null").
---@type host.Marker
EMPTY = nil

---Filter marker: the column is not empty.
---@type host.Marker
NOT_EMPTY = nil

-- require(name): loads a Lua source module from the recipe's folder, each --lib DIR,
-- then stdlib/ ("verify", "convert", "ids", "notion", "team.rules" -> team/rules.lua).
-- Left to LuaLS's own `require`, which resolves modules through runtime.path and
-- workspace.library (the stdlib's annotations are ---@meta convert etc., here).

-- Verification helpers (section 7): in verify, anywhere, and as require "verify".

---A failed expectation fails the run's verification (exit 3) and is listed in the report.
---@param cond any
---@param message string
---@return boolean ok
function expect(cond, message) end

---The number of rows of `table` matching `where`.
---@param table string
---@param where? host.Where
---@return integer
function count(table, where) end

---Expects exactly `n` rows of `table` to match `where`.
---@param table string
---@param where host.Where|nil
---@param n integer
---@return boolean ok
function expect_count(table, where, n) end

---@class host.OrphansSpec
---@field child string the referencing table
---@field fk string|string[] its referencing column(s)
---@field parent string the referenced table
---@field key string|string[] the referenced column(s)

---@class host.Orphans
---@field count integer
---@field sample any[] some of the dangling references

---Rows of `child` whose `fk` matches no `parent.key` (listed in the report).
---@param spec host.OrphansSpec
---@return host.Orphans
function orphans(spec) end

---A checksum of `columns` over the rows matching `where`, to compare two tables or runs.
---@param table string
---@param columns string[]
---@param where? host.Where
---@return string
function checksum(table, columns, where) end

---Compares two tables row by row on `key` and `columns`.
---@param table_a string
---@param table_b string
---@param key string|string[]
---@param columns string[]
---@return boolean ok
---@return string detail
function same_rows(table_a, table_b, key, columns) end
