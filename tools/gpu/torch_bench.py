"""PyTorch on the same GPU, at the shapes tools/gpu/bench-tensor.ts measures (run by it through
spawnSync). argv[1]: JSON {"deadline": epoch seconds, "cases": [...]}; prints one JSON object a
line: {"info": ...}, then one row per (case, variant), or {"error": ...} and exit 0 when torch or
CUDA is missing (the caller records that and goes on). Times with CUDA events: one warm-up, then
batches of calls between two events, reps chosen so a batch lasts ~100 ms; median of 5 batches.
"""

import json
import math
import os
import sys
import time


def emit(obj):
    print(json.dumps(obj), flush=True)


def main():
    spec = json.loads(sys.argv[1])
    deadline = float(spec.get("deadline", time.time() + 120))
    try:
        import torch
        import torch.nn.functional as F
    except Exception as e:  # noqa: BLE001 - any import failure means "no torch here"
        emit({"error": f"import torch failed: {type(e).__name__}: {str(e)[:200]}"})
        return
    # WEBVLM_TORCH_CPU=1 runs the same cases on the CPU (wall-clock timing): a rehearsal of this
    # script where there is no GPU; the GPU run never sets it.
    on_cpu = os.environ.get("WEBVLM_TORCH_CPU") == "1"
    if not on_cpu and not torch.cuda.is_available():
        emit({"error": f"torch {torch.__version__} sees no CUDA device"})
        return
    dev = torch.device("cpu" if on_cpu else "cuda")
    if on_cpu:
        emit({"info": {"torch": torch.__version__, "device": "cpu (rehearsal)"}})
    else:
        props = torch.cuda.get_device_properties(0)
        emit({"info": {"torch": torch.__version__, "cuda": torch.version.cuda, "device": props.name,
                       "capability": f"{props.major}.{props.minor}",
                       "memory_gib": round(props.total_memory / 2**30, 1)}})

    try:
        # torch >= 2.9; older builds raise AssertionError (not AttributeError) for unknown names.
        torch.backends.cuda.matmul.fp32_precision  # noqa: B018
        new_api = True
    except Exception:  # noqa: BLE001
        new_api = False

    def set_tf32(on):
        # torch >= 2.9 has fp32_precision; mixing it with allow_tf32 raises, so use one or the other.
        if new_api:
            torch.backends.cuda.matmul.fp32_precision = "tf32" if on else "ieee"
        else:
            torch.backends.cuda.matmul.allow_tf32 = on

    class WallClock:
        """torch.cuda.Event's interface on the CPU (rehearsals only)."""

        def record(self):
            self.t = time.perf_counter()

        def synchronize(self):
            pass

        def elapsed_time(self, end):
            return (end.t - self.t) * 1000

    def events():
        if on_cpu:
            return WallClock(), WallClock()
        return torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

    def bench(fn):
        fn()
        if not on_cpu:
            torch.cuda.synchronize()
        s, e = events()
        s.record()
        fn()
        e.record()
        e.synchronize()
        single = max(s.elapsed_time(e), 1e-3)
        reps = max(1, min(200, math.ceil(100 / single)))
        per = []
        for _ in range(5):
            s.record()
            for _ in range(reps):
                fn()
            e.record()
            e.synchronize()
            per.append(s.elapsed_time(e) / reps)
        per.sort()
        return {"median_ms": per[2], "min_ms": per[0], "reps": reps, "batches": 5}

    dtypes = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}
    g = torch.Generator(device=dev).manual_seed(0)

    def rand(*shape, dt=torch.float32):
        return torch.randn(*shape, generator=g, device=dev, dtype=torch.float32).to(dt)

    def decode(case, dt):
        """Mistral decode with Hugging Face transformers (eager), random weights made on the device:
        a prefill of case["prompt"] tokens, 3 warm-up steps, then case["tokens"] steps, each
        reading its token back to the host as a streaming generate does. ms per token."""
        from transformers import MistralConfig, MistralForCausalLM

        cfg = MistralConfig(
            vocab_size=case["vocab"], hidden_size=case["hidden"], intermediate_size=case["intermediate"],
            num_hidden_layers=case["layers"], num_attention_heads=case["heads"],
            num_key_value_heads=case["kv_heads"], max_position_embeddings=4096, sliding_window=None,
        )
        t0 = time.time()
        old = torch.get_default_dtype()
        torch.set_default_dtype(dt)  # parameters made in the target dtype, on the device: no f32 copy
        try:
            with torch.device(dev):
                model = MistralForCausalLM(cfg).eval()
        finally:
            torch.set_default_dtype(old)
        init_s = time.time() - t0
        ids = torch.randint(3, case["vocab"], (1, case["prompt"]), device=dev)
        with torch.inference_mode():
            out = model(ids, use_cache=True)
            past, nxt = out.past_key_values, out.logits[:, -1:].argmax(-1)
            stamps = []
            for i in range(3 + case["tokens"]):
                out = model(nxt, past_key_values=past, use_cache=True)
                past, nxt = out.past_key_values, out.logits[:, -1:].argmax(-1)
                nxt.item()
                if i >= 2:
                    stamps.append(time.perf_counter())
        ms = (stamps[-1] - stamps[0]) * 1000 / (len(stamps) - 1)
        params = sum(p.numel() for p in model.parameters())
        del model, past, out
        return {"median_ms": ms, "tokens_per_s": 1000 / ms, "init_s": init_s, "params": params,
                "transformers": __import__("transformers").__version__}

    for case in spec["cases"]:
        if time.time() > deadline:
            emit({"error": "deadline: remaining torch cases skipped", "case": case})
            break
        op = case["op"]
        for variant in case["torch"]:
            dname, tf32 = {"f32-ieee": ("f32", False), "f32-tf32": ("f32", True)}.get(variant, (variant, False))
            dt = dtypes[dname]
            row = {"op": op, "shape": case["shape"], "dtype": variant, "impl": "torch"}
            try:
                set_tf32(tf32)
                if op == "matmul":
                    M, K, N = case["M"], case["K"], case["N"]
                    a = rand(M, K, dt=dt)
                    b = rand(N, K, dt=dt) if case.get("nt") else rand(K, N, dt=dt)
                    fn = (lambda: a @ b.t()) if case.get("nt") else (lambda: a @ b)
                elif op == "attention":
                    B, H, T, D = case["B"], case["H"], case["T"], case["D"]
                    q, k, v = (rand(B, H, T, D, dt=dt) for _ in range(3))
                    causal = bool(case.get("causal"))
                    fn = lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal)  # noqa: E731
                elif op == "softmax":
                    x = rand(case["R"], case["C"], dt=dt)
                    fn = lambda: torch.softmax(x, -1)  # noqa: E731
                elif op == "copy":
                    x = rand(case["R"], case["C"], dt=dt)
                    y = torch.empty_like(x)
                    fn = lambda: y.copy_(x)  # noqa: E731
                elif op == "decode":
                    row.update(decode(case, dt))
                    fn = None
                elif op == "rmsnorm":
                    x = rand(case["R"], case["C"], dt=dt)
                    w = rand(case["C"], dt=dt)
                    fn = lambda: F.rms_norm(x, (case["C"],), w, 1e-5)  # noqa: E731
                else:
                    raise ValueError(f"unknown op {op}")
                if fn is not None:
                    row.update(bench(fn))
            except Exception as e:  # noqa: BLE001 - one failing case must not hide the others
                row["error"] = f"{type(e).__name__}: {str(e)[:300]}"
            emit(row)
            a = b = q = k = v = x = y = w = fn = None  # noqa: F841 - free this case's tensors first
            if not on_cpu:
                torch.cuda.empty_cache()
    set_tf32(False)


if __name__ == "__main__":
    main()
