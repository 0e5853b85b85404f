// `pnpm check-fixture <dir> [--case <name>]…`: one row per tensor, then "N passed, M failed".
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { checkFixture } from "./check.js";
import { formatRow, header, type Row } from "./compare.js";

const USAGE = "usage: pnpm check-fixture <fixture dir> [--case <name>]… [--quiet]";

async function main(): Promise<number> {
  const config = {
    args: process.argv.slice(2),
    options: {
      case: { type: "string", multiple: true },
      quiet: { type: "boolean" },
      help: { type: "boolean" },
    },
    allowPositionals: true,
  } as const;
  let parsed: ReturnType<typeof parseArgs<typeof config>>;
  try {
    parsed = parseArgs(config);
  } catch (e) {
    console.error(`check-fixture: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (positionals.length !== 1) {
    console.error(`check-fixture: expected one fixture directory, got ${positionals.length}\n${USAGE}`);
    return 2;
  }
  // `pnpm <script>` runs in the workspace root; paths are meant relative to where it was typed.
  const dir = resolve(process.env.INIT_CWD ?? process.cwd(), positionals[0]!);
  const width = 64;
  let printedHeader = false;
  const onRow = (r: Row) => {
    if (!printedHeader) {
      console.log(header(width));
      printedHeader = true;
    }
    console.log(formatRow(r, width));
  };
  const onStage = values.quiet ? undefined : (s: string) => console.error(`# ${s}`);
  let rows: Row[];
  try {
    rows = await checkFixture(dir, { cases: values.case, onRow, onStage });
  } catch (e) {
    console.error(`check-fixture: ${(e as Error).message}`);
    return 2;
  }
  const passed = rows.filter((r) => r.status === "pass").length;
  const failed = rows.filter((r) => r.status === "fail").length;
  const unchecked = rows.filter((r) => r.status === "not checked").length;
  if (unchecked) console.log(`${unchecked} not yet checked`);
  console.log(`${passed} passed, ${failed} failed`);
  return failed > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(`check-fixture: ${(e as Error).message}`);
    process.exit(2);
  },
);
