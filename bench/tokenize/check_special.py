#!/usr/bin/env python3
"""check_special.py — compares `locara tokenize` (add BOS per metadata, with and without special-token
parsing) with llama.cpp (llama-cpp-python, Llama(vocab_only=True).tokenize) on chat-shaped texts.
usage: check_special.py VOCAB.gguf ...   (run from the repository root; uses build-tok/locara or $LOCARA)"""
import os, subprocess, sys
from llama_cpp import Llama
texts = ["<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi 🙂 <|im_end|><|endoftext|>x",
         "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>  <s></s>",
         "  <s> hello </s>\n<unk> world <|endoftext|>"]
bad = 0
for v in sys.argv[1:]:
    llm = Llama(model_path=v, vocab_only=True, verbose=False)
    for t in texts:
        for special in (True, False):
            ref = llm.tokenize(t.encode(), add_bos=True, special=special)
            args = [os.environ.get("LOCARA", "build-tok/locara"), "tokenize", "-m", v] + ([] if special else ["--no-special"])
            got = [int(x) for x in subprocess.run(args, input=t.encode(), capture_output=True).stdout.split()]
            bad += ref != got
            print(v.split('/')[-1][:28], special, "OK" if ref == got else f"DIFF ref={ref} got={got}")
sys.exit(1 if bad else 0)
