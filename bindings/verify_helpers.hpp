#pragma once
// The verification helpers of RECIPE_API.md section 7, as protected globals.

namespace host {

class Sandbox;
struct RunContext;

// Installs expect, count, expect_count, orphans, checksum and same_rows.
// Failed expectations are appended to context.checks.
void install_verify_helpers(Sandbox& sandbox, RunContext& context);

}  // namespace host
