#!/usr/bin/env python3
"""The Hugging Face transformers baseline of tests/gpu/run-gpu-checks.sh.

Builds LlamaForCausalLM from the same shape as the Brisk benchmark model
(random F16 weights, on the GPU, no network, no files), runs the same
workload - N requests of fixed prompt and output length - through batched
greedy generate(), and prints one JSON object with the generated tokens per
second. Every sequence generates exactly --output-len tokens (no EOS), as
Brisk's benchmark does with fixed output lengths. Prints {"ok": false,
"error": ...} and exits 1 when torch, transformers or a device is missing.
"""
import argparse
import json
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never the network
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--dims", default="2048,5632,22,32,4,32000,2048",
                   help="D,H,L,HEADS,KV_HEADS,VOCAB,CTX (the make-model --shape 1.1b shape)")
    p.add_argument("--num-requests", type=int, default=256)
    p.add_argument("--prompt-len", type=int, default=128)
    p.add_argument("--output-len", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=64,
                   help="sequences per generate() call (the requests run in ceil(N / B) batches)")
    p.add_argument("--rope-theta", type=float, default=10000.0)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()

    try:
        import torch
        from transformers import LlamaConfig, LlamaForCausalLM
    except Exception as e:  # the table says why, the script goes on
        print(json.dumps({"ok": False, "error": f"cannot import torch/transformers: {e}"}))
        return 1
    if not torch.cuda.is_available():
        print(json.dumps({"ok": False, "error": "torch sees no CUDA device"}))
        return 1

    d, h, layers, heads, kv_heads, vocab, ctx = (int(x) for x in a.dims.split(","))
    if a.prompt_len + a.output_len > ctx:
        ctx = a.prompt_len + a.output_len
    cfg = LlamaConfig(hidden_size=d, intermediate_size=h, num_hidden_layers=layers, num_attention_heads=heads,
                      num_key_value_heads=kv_heads, vocab_size=vocab, max_position_embeddings=ctx,
                      rope_theta=a.rope_theta, rms_norm_eps=1e-5, tie_word_embeddings=False,
                      bos_token_id=1, eos_token_id=2, pad_token_id=0)
    torch.manual_seed(a.seed)
    # Initialised on the device (a 1.1B model's random init on the CPU takes
    # long), then F16 as Brisk's model file.
    try:
        with torch.device("cuda"):
            model = LlamaForCausalLM(cfg)
    except (AttributeError, TypeError):  # torch < 2.0: no device context manager
        model = LlamaForCausalLM(cfg).to("cuda")
    model = model.half().eval()
    gc = model.generation_config
    gc.eos_token_id = None  # exactly output_len tokens per sequence
    gc.pad_token_id = 0
    gc.do_sample = False

    g = torch.Generator(device="cpu").manual_seed(a.seed)
    prompts = torch.randint(3, vocab, (a.num_requests, a.prompt_len), generator=g)

    def run(batch):
        ids = batch.to("cuda")
        mask = torch.ones_like(ids)
        # No EOS (generation_config.eos_token_id = None): every row generates max_new_tokens.
        out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=a.output_len, do_sample=False,
                             use_cache=True)
        return out.shape[1] - ids.shape[1], out.shape[0]

    with torch.inference_mode():
        run(prompts[:2, :8])  # warm-up: kernels, allocator
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        generated = 0
        for i in range(0, a.num_requests, a.batch_size):
            new, rows = run(prompts[i:i + a.batch_size])
            generated += new * rows
        torch.cuda.synchronize()
        dt = time.perf_counter() - t0

    print(json.dumps({
        "ok": True,
        "device": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "transformers": __import__("transformers").__version__,
        "params": sum(x.numel() for x in model.parameters()),
        "num_requests": a.num_requests,
        "prompt_len": a.prompt_len,
        "output_len": a.output_len,
        "batch_size": a.batch_size,
        "seconds": dt,
        "generated_tokens": generated,
        "generation_tokens_per_s": generated / dt if dt > 0 else 0.0,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
