-- confidence_defaults/phases_project.lua
--
-- Proposes a project for phases that have none, from the code at the start of the
-- phase name: "ALPHA-Build" -> the project whose code is "ALPHA".
--
-- A name is a weaker signal than a person's choice, so nothing here is written at
-- high confidence:
--   * the prefix equals a project code exactly            -> confidence "medium"
--   * it matches only when upper-cased ("cafe" -> "CAFE")  -> confidence "low"
-- With the default --min-confidence high every proposal becomes a review item in
-- the report (table, key, column, value, confidence, reason) and nothing is written.
-- After review, apply them:
--
--   host run recipes/confidence_defaults/phases_project.lua                        # review only
--   host run recipes/confidence_defaults/phases_project.lua --min-confidence medium
--
-- Phases whose name gives no usable code are audited ("no_project_match").

local PREFIX = "^%s*(%w+)[%-:%s]"  -- "ALPHA-Build", "ALPHA: Build", "DELTA – Migration"

return {
  name = "phases-project-from-code",
  version = "1",
  description = "Empty phase project proposed from the project code that starts the phase name.",
  table = "phases",
  columns = { "id", "name", "project_id" },
  where = { project_id = EMPTY },
  writes = { phases = { "project_id" } },
  each = function(row)
    local prefix = row.name and row.name:match(PREFIX)
    if not prefix or #prefix < 2 then
      audit("no_project_match", { phase = row.id, name = row.name, why = "no code prefix" })
      return
    end
    local project = read("projects", { code = prefix }, { columns = { "id", "code" } })
    local confidence = "medium"
    if not project and prefix:upper() ~= prefix then
      project = read("projects", { code = prefix:upper() }, { columns = { "id", "code" } })
      confidence = "low"
    end
    if not project then
      audit("no_project_match", { phase = row.id, name = row.name, why = "no project with code " .. prefix })
      return
    end
    patch_if_empty(row, "project_id", project.id, {
      confidence = confidence,
      reason = "phase name prefix '" .. prefix .. "' matches project code " .. project.code,
    })
  end,
}
