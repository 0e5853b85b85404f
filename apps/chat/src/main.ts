#!/usr/bin/env node
// `pnpm chat --model <dir> [--image <file>]… ["prompt"]`: one answer, streamed; without a prompt,
// a multi-turn session on stdin.
import { resolve } from "node:path";
import { createInterface } from "node:readline";
import { Command, InvalidArgumentError } from "commander";
import { type ChatOptions, ChatSession, type TurnStats } from "./session.js";

// `pnpm chat` runs in the workspace root; paths are meant relative to where the command was typed.
const cwd = process.env.INIT_CWD ?? process.cwd();

function int(name: string, min: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min)
      throw new InvalidArgumentError(`${name} must be an integer ≥ ${min}`);
    return n;
  };
}
function num(name: string, check: (n: number) => boolean, what: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || !check(n)) throw new InvalidArgumentError(`${name} must be ${what}`);
    return n;
  };
}
const collect = (v: string, prev: string[]) => [...prev, v];

const HELP = `commands:
  /image <file>   attach an image to your next message
  /reset          forget the conversation
  /tokens         show token counts
  /help           this list
  /quit           leave (or Ctrl-D)`;

function stats(s: TurnStats): string {
  const speed = s.tokensPerSecond ? `, ${s.tokensPerSecond.toFixed(1)} tok/s` : "";
  return `[${s.promptTokens} prompt tokens, ${s.newTokens} new (${s.finishReason}), first token ${s.timeToFirstToken.toFixed(2)} s${speed}]`;
}

async function interactive(session: ChatSession, initialImages: string[]): Promise<void> {
  for (const img of initialImages) await session.attach(img);
  const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: process.stdin.isTTY });
  const prompt = () => {
    const n = session.pendingImages.length;
    rl.setPrompt(n ? `you (${n} image${n > 1 ? "s" : ""})> ` : "you> ");
    rl.prompt();
  };
  console.log(
    `webvlm chat: ${HELP.split("\n").length - 1} commands, /help lists them. Context ${session.contextLength} tokens.`,
  );
  prompt();
  for await (const raw of rl) {
    const line = raw.trim();
    try {
      if (line === "") {
        // nothing
      } else if (line === "/quit" || line === "/exit") {
        break;
      } else if (line === "/help") {
        console.log(HELP);
      } else if (line === "/reset") {
        session.reset();
        console.log("(conversation cleared)");
      } else if (line === "/tokens") {
        console.log(
          `last prompt ${session.lastPromptTokens} tokens, ${session.totalNewTokens} generated in this conversation, context ${session.contextLength}, max new tokens per answer ${session.options.maxNewTokens}`,
        );
      } else if (line.startsWith("/image")) {
        const path = line.slice("/image".length).trim();
        if (!path) console.log("usage: /image <file>");
        else {
          await session.attach(resolve(cwd, path));
          console.log(`(attached ${path})`);
        }
      } else if (line.startsWith("/")) {
        console.log(`unknown command ${line.split(/\s/)[0]}; /help lists the commands`);
      } else {
        process.stdout.write("assistant> ");
        const s = await session.send(line, (chunk) => process.stdout.write(chunk));
        process.stdout.write("\n");
        console.error(stats(s));
      }
    } catch (e) {
      console.error(`error: ${firstLine(e)}`);
    }
    prompt();
  }
  rl.close();
}

function firstLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.split("\n")[0]!;
}

async function main(argv: string[]): Promise<number> {
  const program = new Command()
    .name("webvlm-chat")
    .description(
      "Chat with an Idefics2 model directory (config.json, weights, preprocessor config, tokenizer)",
    )
    .requiredOption("-m, --model <dir>", "model directory")
    .option("-i, --image <file>", "an image for the prompt (repeat for several)", collect, [] as string[])
    .option("--split-images", "split each image into 4 crops + the whole (do_image_splitting)")
    .option("--no-split-images", "do not split images, whatever the preprocessor config says")
    .option("--max-new-tokens <n>", "tokens to generate at most", int("--max-new-tokens", 1), 256)
    .option("--do-sample", "sample instead of greedy decoding (implied by --temperature/--top-k/--top-p)")
    .option(
      "--temperature <t>",
      "sampling temperature",
      num("--temperature", (n) => n > 0, "a positive number"),
    )
    .option("--top-k <k>", "keep the k most likely tokens", int("--top-k", 0))
    .option(
      "--top-p <p>",
      "nucleus sampling mass",
      num("--top-p", (n) => n > 0 && n <= 1, "in (0, 1]"),
    )
    .option(
      "--repetition-penalty <r>",
      "HF repetition penalty (> 1 discourages repeats)",
      num("--repetition-penalty", (n) => n > 0, "a positive number"),
    )
    .option("--seed <n>", "sampling seed", int("--seed", 0), 0)
    .option("--dtype <dtype>", "weights on the device: auto (f16 on a GPU), f32 or f16", "auto")
    .option(
      "--char-tokenizer",
      "use the fixtures' character tokenizer (auto when the directory has manifest.json but no tokenizer.json)",
    )
    .argument("[prompt]", "answer this once and exit; without it, start a conversation")
    .showHelpAfterError(false)
    .exitOverride();
  try {
    program.parse(argv, { from: "user" });
  } catch (e) {
    const code = (e as { exitCode?: number }).exitCode;
    return code ?? 2;
  }
  const o = program.opts<{
    model: string;
    image: string[];
    splitImages?: boolean;
    maxNewTokens: number;
    doSample?: boolean;
    temperature?: number;
    topK?: number;
    topP?: number;
    repetitionPenalty?: number;
    seed: number;
    dtype: string;
    charTokenizer?: boolean;
  }>();
  if (!["auto", "f32", "f16"].includes(o.dtype)) {
    console.error(`error: --dtype must be auto, f32 or f16, got ${o.dtype}`);
    return 2;
  }
  const prompt = program.args[0];
  const sampling = o.doSample || o.temperature !== undefined || o.topK !== undefined || o.topP !== undefined;
  const options: ChatOptions = {
    maxNewTokens: o.maxNewTokens,
    dtype: o.dtype as ChatOptions["dtype"],
    doSample: Boolean(sampling),
    seed: o.seed,
    ...(o.splitImages === undefined ? {} : { splitImages: o.splitImages }),
    ...(o.temperature === undefined ? {} : { temperature: o.temperature }),
    ...(o.topK === undefined ? {} : { topK: o.topK }),
    ...(o.topP === undefined ? {} : { topP: o.topP }),
    ...(o.repetitionPenalty === undefined ? {} : { repetitionPenalty: o.repetitionPenalty }),
    ...(o.charTokenizer ? { charTokenizer: true } : {}),
  };
  const images = o.image.map((p) => resolve(cwd, p));
  let session: ChatSession | undefined;
  try {
    session = await ChatSession.open(resolve(cwd, o.model), options);
    if (prompt === undefined) {
      await interactive(session, images);
      return 0;
    }
    for (const img of images) await session.attach(img);
    const s = await session.send(prompt, (chunk) => process.stdout.write(chunk));
    process.stdout.write("\n");
    console.error(stats(s));
    return 0;
  } catch (e) {
    console.error(`error: ${firstLine(e)}`);
    if (process.env.WEBVLM_DEBUG) console.error(e);
    return 1;
  } finally {
    session?.dispose();
  }
}

main(process.argv.slice(2)).then((code) => process.exit(code));
