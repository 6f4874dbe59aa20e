"""A small handbook built in a temporary folder (Markdown, reStructuredText, HTML, text, PDF, an empty and a broken
file), and one index over it shared by the tests of a module (building one loads MiniLM: seconds, not minutes)."""

from __future__ import annotations

from pathlib import Path

import pytest

KEYS = """# Rotating API keys

API keys are rotated every 90 days. To rotate a key, open the admin console, choose Credentials, and press Rotate.
The old key keeps working for 24 hours so that clients can switch.

## Revoking a key

If a key leaks, revoke it at once from the Credentials page. Revoked keys stop working immediately.
"""

VACATION = """Vacation policy
===============

Every employee has 25 days of paid vacation per year. Unused days carry over until the end of March of the next year.

Requesting leave
----------------

Submit a leave request in the HR portal at least two weeks ahead. Your manager approves it within three working days.
"""

CANTEEN = ("<html><head><title>Canteen</title><script>var hidden = 'script text';</script></head><body><nav>menu links</nav>"
           "<h1>Canteen hours</h1><p>The canteen opens at 11:30 and closes at 14:00 on weekdays.</p>"
           "<h2>Payment</h2><p>Pay with your badge. Cash is not accepted.</p></body></html>")

PLANTS = "Office plants need water twice a week. The facilities team waters them on Mondays and Thursdays.\n"

BACKUPS = "Database backups run every night at 02:00. Backups are kept for thirty days in the cold storage bucket."


def minimal_pdf(text: str) -> bytes:
    """A one-page PDF whose page draws `text` in Helvetica (hand-written objects with a correct xref table)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
               b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def make_handbook(root: Path) -> Path:
    (root / "ops").mkdir(parents=True)
    (root / "ops" / "keys.md").write_text(KEYS)
    (root / "hr").mkdir()
    (root / "hr" / "vacation.rst").write_text(VACATION)
    (root / "canteen.html").write_text(CANTEEN)
    (root / "plants.txt").write_text(PLANTS)
    (root / "ops" / "backups.pdf").write_bytes(minimal_pdf(BACKUPS))
    (root / "empty.md").write_text("   \n")
    (root / "broken.txt").write_bytes(b"\xff\xfe\x00 not utf-8 \xc3")
    (root / "ops" / "scan.pdf").write_bytes(b"%PDF-1.4 truncated")
    return root


@pytest.fixture(scope="module")
def handbook(tmp_path_factory) -> Path:
    return make_handbook(tmp_path_factory.mktemp("handbook") / "docs")


@pytest.fixture(scope="module")
def built(handbook, tmp_path_factory):
    """(workspace, RunResult) of `docs@1` over the handbook; the result's model is the index."""
    import torch

    torch.set_num_threads(1)
    home = tmp_path_factory.mktemp("ws")
    return home, build_index("docs", handbook, home)


def build_index(name: str, folder, home, *, update: bool = False, encoder: str = "minilm"):
    """An index built by the run driver, as `trainyard index` builds it."""
    from trainyard.rag.build import IndexPlan, IndexSettings
    from trainyard.registry.workspace import Workspace
    from trainyard.runs.driver import execute

    return execute(IndexPlan(name, folder, IndexSettings(encoder=encoder, threads=1), update=update), Workspace.resolve(home))


@pytest.fixture(scope="module")
def random_encoder(tmp_path_factory) -> Path:
    """A tiny randomly initialised BERT with MiniLM's tokenizer: an encoder whose vectors live in another space."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    from trainyard.rag.encoder import minilm_path

    path = tmp_path_factory.mktemp("random-encoder")
    tok = AutoTokenizer.from_pretrained(str(minilm_path()))
    BertModel(BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64)).save_pretrained(path)
    tok.save_pretrained(path)
    return path
