"""Greedy answers of two models to the same held-out 'Which book ...?' prompts (made by kjv_sets.py): how often the
answer is a book name at all (the trained format) and how often it is the right book.

    python benchmarks/lm/quality/book_answers.py kjv@1 kjv-sft@1 kjv/sft-heldout.jsonl --books kjv/sft-train.jsonl
"""

from __future__ import annotations

import argparse
import json


def main() -> None:
    import torch

    import trainyard
    from trainyard.lm.generate import Sampling, generate
    from trainyard.lm.sft import chat_prompt

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", help="registry refs")
    ap.add_argument("data", help="JSONL with prompt and response (the right book)")
    ap.add_argument("--books", required=True, help="JSONL whose responses are the valid book names")
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = [json.loads(line) for line in open(args.data)]
    books = {json.loads(line)["response"] for line in open(args.books)}
    greedy = Sampling(max_tokens=8, temperature=0, stop=("\n",))
    print("| model | answer is a book name | right book | first answers |\n|---|---|---|---|")
    for ref in args.models:
        lm = trainyard.load(ref)
        answers = [generate(lm.model, lm.tokenizer, chat_prompt(lm.tokenizer, r["prompt"]), greedy).text.strip() for r in rows]
        named = sum(a in books for a in answers) / len(rows)
        right = sum(a == r["response"] for a, r in zip(answers, rows)) / len(rows)
        print(f"| {ref} | {named:.1%} | {right:.1%} | {'; '.join(answers[:4])} |")
    top = max(books, key=lambda b: sum(r["response"] == b for r in rows))
    print(f"\nAlways answering the most frequent book ('{top}') would be right {sum(r['response'] == top for r in rows) / len(rows):.1%}.")


if __name__ == "__main__":
    main()
