// Runs the processor and the model on every case of a fixture directory and compares each tensor
// the manifest lists with what this port produces. Nothing here knows case names, counts or shapes:
// cases, prompts, images, tolerances-by-kind and gradient names all come from manifest.json.
import { join } from "node:path";
import { paperConnectors } from "@webvlm/connectors";
import { Idefics2ImageProcessor, loadImageProcessorConfig } from "@webvlm/data";
import {
  createIdefics2,
  type FixtureCase,
  FixtureCharTokenizer,
  type FixtureManifest,
  Idefics2InputProcessor,
  inputsFromBatch,
  readFixtureManifest,
} from "@webvlm/idefics2";
import { positionsFromMask } from "@webvlm/language";
import {
  getDevice,
  noGrad,
  openSafetensors,
  type SafetensorsCheckpoint,
  type Tensor,
  toFloat32,
  toInt32,
} from "@webvlm/tensor";
import { positionBuckets } from "@webvlm/vision";
import { compare, type Row, type Values } from "./compare.js";

/** Tolerances of the fixture README: exact for ids/masks/tokens, 1e-4 for activations, 1e-5 for loss and gradients. */
export const TOL = { exact: 0, activation: 1e-4, loss: 1e-5, grad: 1e-5 } as const;

export interface CheckOptions {
  /** Only these cases (default: every case in the manifest). */
  cases?: string[];
  onRow?: (row: Row) => void;
  /** Progress lines ("case batch: forward"). */
  onStage?: (text: string) => void;
}

const INT_NAMES =
  /^(input_ids|attention_mask|labels|pixel_attention_mask|patch_attention_mask|vision\.position_ids|position_ids_from_mask|generate\.sequences|debug\.resized\.\d+\.\d+)$/;
const PATCH_ROWS =
  /^(vision\.(embeddings|layer_\d+\.output|last_hidden_state)|connector\.modality_projection)$/;
const TOKEN_ROWS = /^(text\.(layer_\d+\.output|final_norm_output)|logits|logits_with_mask_position_ids)$/;

class ExpectedTensors {
  private readonly open = new Map<string, Promise<SafetensorsCheckpoint>>();
  constructor(
    readonly dir: string,
    readonly manifest: FixtureManifest,
  ) {}

  has(name: string): boolean {
    return name in this.manifest.tensors;
  }

  async read(name: string): Promise<Values> {
    const entry = this.manifest.tensors[name];
    if (!entry) throw new Error(`manifest lists no tensor ${name}`);
    let ckpt = this.open.get(entry.file);
    if (!ckpt) {
      ckpt = openSafetensors(join(this.dir, entry.file));
      this.open.set(entry.file, ckpt);
    }
    const t = await (await ckpt).read(name);
    const isInt = /^(I|U)\d+$|^BOOL$/.test(t.dtype);
    return { data: isInt ? toInt32(t) : toFloat32(t), shape: t.shape };
  }

  async close(): Promise<void> {
    for (const c of this.open.values()) await (await c).close();
  }
}

function arange(B: number, T: number): { data: Int32Array; shape: number[] } {
  const data = new Int32Array(B * T);
  for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) data[b * T + t] = t;
  return { data, shape: [B, T] };
}

async function host(t: Tensor): Promise<Values> {
  return {
    data: t.dtype === "i32" || t.dtype === "u32" ? await t.data() : await t.toFloat32(),
    shape: t.shape,
  };
}

/** Checks every case (and the image-processor / position-bucket extras) of the fixture in `dir`. */
export async function checkFixture(dir: string, options: CheckOptions = {}): Promise<Row[]> {
  const manifest = await readFixtureManifest(dir);
  const expected = new ExpectedTensors(dir, manifest);
  const rows: Row[] = [];
  const emit = (r: Row) => {
    rows.push(r);
    options.onRow?.(r);
  };
  const stage = options.onStage ?? (() => {});
  await getDevice();
  const model = await createIdefics2({ connectors: paperConnectors }).load(dir, { dtype: "f32" });
  const tokenizer = new FixtureCharTokenizer(manifest.token_ids);
  const baseImageConfig = await loadImageProcessorConfig(join(dir, "preprocessor_config.json"));
  const handled = new Set<string>();

  const check = async (
    name: string,
    actual: Values | null,
    tol: number,
    opts: { rowMask?: ArrayLike<number>; maskNote?: string } = {},
  ) => {
    if (!expected.has(name) || handled.has(name)) return;
    handled.add(name);
    if (actual === null) {
      emit({ name, diff: null, tol, status: "fail", note: "this port produced nothing for it" });
      return;
    }
    emit(compare(name, actual, await expected.read(name), tol, opts));
  };

  try {
    const caseNames = Object.keys(manifest.cases);
    for (const c of options.cases ?? []) {
      if (!caseNames.includes(c))
        throw new Error(
          `case "${c}" is not in ${join(dir, "manifest.json")} (cases: ${caseNames.join(", ")})`,
        );
    }
    for (const caseName of options.cases ?? caseNames) {
      await checkCase(caseName, manifest.cases[caseName]!);
    }
    if (!options.cases) await checkExtras();
  } finally {
    await expected.close();
    model.dispose();
  }
  return rows;

  async function checkCase(caseName: string, spec: FixtureCase): Promise<void> {
    const p = `${caseName}.`;
    const listed = Object.keys(manifest.tensors).filter((k) => k.startsWith(p));
    const suffixes = new Set(listed.map((k) => k.slice(p.length)));
    const tol = (suffix: string) => (INT_NAMES.test(suffix) ? TOL.exact : TOL.activation);

    // 1. Processor: prompts + images → ids, masks, pixels (labels when the case has a loss).
    stage(`case ${caseName}: processor`);
    const images = (spec.images ?? spec.prompts.map(() => [])).map((list) =>
      list.map((n) => {
        const img = manifest.images[n];
        if (!img) throw new Error(`case ${caseName}: image "${n}" is not in the manifest's images`);
        return join(dir, img.file);
      }),
    );
    const wantsLoss = suffixes.has("loss") || suffixes.has("labels") || typeof spec.loss === "number";
    const processor = new Idefics2InputProcessor(model, {
      tokenizer,
      imageProcessor: new Idefics2ImageProcessor({
        ...baseImageConfig,
        do_image_splitting: Boolean(spec.do_image_splitting),
      }),
    });
    const batch = await processor.process(spec.prompts, {
      images,
      labels: wantsLoss ? "hf" : "none",
      keepResized: true,
      padding: "left",
    });
    const [B, T] = batch.shape;
    await check(`${p}input_ids`, { data: batch.inputIds, shape: [B, T] }, TOL.exact);
    await check(`${p}attention_mask`, { data: batch.attentionMask, shape: [B, T] }, TOL.exact);
    if (batch.labels) await check(`${p}labels`, { data: batch.labels, shape: [B, T] }, TOL.exact);
    if (batch.pixelShape) {
      const [, I, , H, W] = batch.pixelShape;
      await check(`${p}pixel_values`, { data: batch.pixelValues!, shape: batch.pixelShape }, TOL.exact);
      await check(
        `${p}pixel_attention_mask`,
        { data: batch.pixelAttentionMask!, shape: [B, I, H, W] },
        TOL.exact,
      );
    }
    for (const suffix of suffixes) {
      const m = /^debug\.resized\.(\d+)\.(\d+)$/.exec(suffix);
      if (!m) continue;
      const img = batch.resized?.[Number(m[1])]?.[Number(m[2])];
      await check(
        `${p}${suffix}`,
        img ? { data: img.data, shape: [img.height, img.width, 3] } : null,
        TOL.exact,
      );
    }
    const inputs = inputsFromBatch(batch);
    const realTokens = batch.attentionMask;
    const tokenNote = `rows with attention_mask = 1 (${realTokens.reduce((a, b) => a + b, 0)}/${B * T})`;

    // 2. Forward with HF's default positions 0..T-1, every intermediate captured by the tap.
    stage(`case ${caseName}: forward`);
    const captured = new Map<string, Tensor>();
    model.tap = (name, value) => {
      captured.get(name)?.dispose();
      captured.set(name, value.retainHandle());
    };
    try {
      const logits = noGrad(() => model.forward({ ...inputs, positionIds: arange(B, T) }));
      logits.dispose();
    } finally {
      model.tap = undefined;
    }
    const patchMask = suffixes.has("patch_attention_mask")
      ? (await expected.read(`${p}patch_attention_mask`)).data
      : captured.has("patch_attention_mask")
        ? (await host(captured.get("patch_attention_mask")!)).data
        : undefined;
    for (const suffix of suffixes) {
      const t = captured.get(suffix);
      if (!t) continue;
      const opts =
        PATCH_ROWS.test(suffix) && patchMask
          ? { rowMask: patchMask, maskNote: "patches with patch_attention_mask = 1" }
          : TOKEN_ROWS.test(suffix)
            ? { rowMask: realTokens, maskNote: tokenNote }
            : {};
      await check(`${p}${suffix}`, await host(t), tol(suffix), opts);
    }
    for (const t of captured.values()) t.dispose();

    // 3. Position ids as generate() derives them, and the forward that uses them.
    if (suffixes.has("position_ids_from_mask")) {
      await check(
        `${p}position_ids_from_mask`,
        { data: positionsFromMask(batch.attentionMask, B, T, T), shape: [B, T] },
        TOL.exact,
      );
    }
    if (suffixes.has("logits_with_mask_position_ids")) {
      stage(`case ${caseName}: forward with mask-derived positions`);
      const logits = noGrad(() => model.forward(inputs));
      await check(`${p}logits_with_mask_position_ids`, await host(logits), TOL.activation, {
        rowMask: realTokens,
        maskNote: tokenNote,
      });
      logits.dispose();
    }

    // 4. Greedy generation with the KV cache.
    if (suffixes.has("generate.sequences") || suffixes.has("generate.scores")) {
      stage(`case ${caseName}: generate`);
      const g = spec.generate ?? { max_new_tokens: 0 };
      let maxNew = g.max_new_tokens;
      if (!(maxNew > 0) && suffixes.has("generate.sequences"))
        maxNew = manifest.tensors[`${p}generate.sequences`]!.shape[1]! - T;
      if (g.do_sample) {
        for (const s of ["generate.sequences", "generate.scores"]) {
          if (!suffixes.has(s)) continue;
          handled.add(`${p}${s}`);
          emit({
            name: `${p}${s}`,
            diff: null,
            tol: tol(s),
            status: "not checked",
            note: "sampled generation cannot be reproduced",
          });
        }
      } else {
        const eos = g.eos_token_id;
        const result = await model.generate(inputs, {
          maxNewTokens: maxNew,
          stopTokens: eos === null || eos === undefined ? [] : Array.isArray(eos) ? eos : [eos],
          outputScores: true,
        });
        const L = result.sequences[0]!.length;
        await check(`${p}generate.sequences`, { data: result.sequences.flat(), shape: [B, L] }, TOL.exact);
        const steps = result.scores!.length;
        const V = steps ? result.scores![0]!.length / B : 0;
        const flat = new Float32Array(steps * B * V);
        for (const [i, s] of result.scores!.entries()) flat.set(s, i * B * V);
        await check(`${p}generate.scores`, { data: flat, shape: [steps, B, V] }, TOL.activation);
      }
    }

    // 5. Loss and gradients (HF's forward with labels: positions 0..T-1).
    if (wantsLoss && batch.labels) {
      stage(`case ${caseName}: loss and backward`);
      const params = new Map(model.namedParameters());
      for (const [, prm] of params) {
        if (prm.loaded && prm.value.grad) {
          prm.value.grad.dispose();
          prm.value.grad = null;
        }
      }
      const { logits, loss } = model.forwardWithLoss({
        ...inputs,
        labels: inputs.labels!,
        positionIds: arange(B, T),
      });
      logits.dispose();
      const lossValue = await loss.item();
      if (expected.has(`${p}loss`))
        await check(`${p}loss`, { data: [lossValue], shape: loss.shape }, TOL.loss);
      else if (typeof spec.loss === "number")
        emit(
          compare(
            `${p}loss (manifest)`,
            { data: [lossValue], shape: [] },
            { data: [spec.loss], shape: [] },
            TOL.loss,
          ),
        );
      const gradNames = listed.filter((k) => k.startsWith(`${p}grad.`));
      let backwardError: Error | null = null;
      try {
        loss.backward();
      } catch (e) {
        backwardError = e as Error;
      }
      for (const name of gradNames) {
        const param = name.slice(`${p}grad.`.length);
        handled.add(name);
        if (backwardError) {
          emit({
            name,
            diff: null,
            tol: TOL.grad,
            status: "not checked",
            note: `backward failed: ${backwardError.message.split("\n")[0]}`,
          });
          continue;
        }
        const prm = params.get(param);
        if (!prm) {
          emit({
            name,
            diff: null,
            tol: TOL.grad,
            status: "fail",
            note: `the model has no parameter ${param}`,
          });
          continue;
        }
        const grad = prm.loaded ? prm.value.grad : null;
        if (!grad) {
          // Backward ran but did not reach this parameter: autograd does not yet work through the
          // whole model (some op dropped the gradient), so there is no value to judge yet.
          emit({
            name,
            diff: null,
            tol: TOL.grad,
            status: "not checked",
            note: "backward did not reach this parameter",
          });
          continue;
        }
        emit(compare(name, await host(grad), await expected.read(name), TOL.grad));
      }
      loss.dispose();
      for (const [, prm] of params) {
        if (prm.loaded && prm.value.grad) {
          prm.value.grad.dispose();
          prm.value.grad = null;
        }
      }
    }

    for (const name of listed) {
      if (!handled.has(name)) {
        handled.add(name);
        emit({
          name,
          diff: null,
          tol: tol(name.slice(p.length)),
          status: "not checked",
          note: "this port has no producer for it",
        });
      }
    }
  }

  // Tensors outside the cases: vision position-bucket tables and direct image-processor calls.
  async function checkExtras(): Promise<void> {
    const names = Object.keys(manifest.tensors).filter(
      (k) => !handled.has(k) && !Object.keys(manifest.cases).some((c) => k.startsWith(`${c}.`)),
    );
    for (const name of names) {
      const m = /^aux\.position_buckets\.N(\d+)$/.exec(name);
      if (!m) continue;
      const N = Number(m[1]);
      const table = new Int32Array(N * N).fill(-1);
      for (let n = 1; n <= N; n++) table.set(positionBuckets(n, N), (n - 1) * N);
      await check(name, { data: table, shape: [N, N] }, TOL.exact);
    }
    for (const entry of manifest.imageproc_direct?.entries ?? []) {
      const m = /^imageproc_direct\.(.+)\.(split|nosplit)$/.exec(entry);
      const img = m ? manifest.images[m[1]!] : undefined;
      if (!m || !img) continue;
      stage(`${entry}: image processor`);
      const ip = new Idefics2ImageProcessor({ ...baseImageConfig, do_image_splitting: m[2] === "split" });
      // Called on its own, the image processor composites alpha over white (its default here).
      const out = await ip.process([[join(dir, img.file)]], { keepResized: true });
      const [B, I, , H, W] = out.shape;
      await check(`${entry}.pixel_values`, { data: out.pixelValues, shape: out.shape }, TOL.exact);
      await check(
        `${entry}.pixel_attention_mask`,
        { data: out.pixelAttentionMask, shape: [B, I, H, W] },
        TOL.exact,
      );
      for (const [j, r] of (out.resized?.[0] ?? []).entries()) {
        await check(`${entry}.resized.${j}`, { data: r.data, shape: [r.height, r.width, 3] }, TOL.exact);
      }
    }
    for (const name of names) {
      if (!handled.has(name)) {
        handled.add(name);
        emit({ name, diff: null, tol: 0, status: "not checked", note: "this port has no producer for it" });
      }
    }
  }
}
