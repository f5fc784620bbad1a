"""Loading a result or weights file must never be able to execute code: no `weights_only=False` anywhere."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UNSAFE = re.compile(r"weights_only\s*=\s*False")
SCANNED = ("lead_hsr", "workflow_scripts", "scripts", "bench", "rules", "Snakefile")


def test_no_weights_only_false_in_the_project():
    offenders = []
    for top in SCANNED:
        base = ROOT / top
        files = [base] if base.is_file() else [*base.rglob("*.py"), *base.rglob("*.smk")]
        for path in files:
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
                if UNSAFE.search(line):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "torch.load with weights_only=False can execute code:\n" + "\n".join(offenders)


def test_the_scan_sees_an_unsafe_call(tmp_path):
    """The pattern matches the spellings people write (guards against a scan that can never fail)."""
    for spelling in ("torch.load(p, weights_only=False)", "torch.load(p, weights_only = False)"):
        assert UNSAFE.search(spelling)
    assert not UNSAFE.search("torch.load(p, weights_only=True)")
