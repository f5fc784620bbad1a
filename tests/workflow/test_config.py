"""Config validation and DAG construction (no torch, no data needed)."""
import resource
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lead_hsr.config import validate_config
from lead_hsr.errors import InputError

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "config" / "schema.yaml"
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def paper_config():
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def merged(base, over):
    """Snakemake's --configfile deep merge, for checking demo.yaml the way Snakemake sees it."""
    out = dict(base)
    for key, value in over.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def test_paper_and_demo_configs_are_valid():
    validate_config(paper_config(), SCHEMA)
    demo = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    validate_config(merged(paper_config(), demo), SCHEMA)


def test_wrong_type_names_key_value_and_allowed():
    cfg = paper_config()
    cfg["geometry"]["resize"] = "big"
    with pytest.raises(InputError) as err:
        validate_config(cfg, SCHEMA)
    assert "geometry.resize: got 'big'; expected type integer" in str(err.value)


def test_unknown_key_is_named_with_the_allowed_ones():
    cfg = paper_config()
    cfg["geometry"]["resise"] = 136
    with pytest.raises(InputError) as err:
        validate_config(cfg, SCHEMA)
    msg = str(err.value)
    assert "unknown key(s) ['resise']" in msg and "resize" in msg


def test_missing_dataset_root_is_named():
    cfg = paper_config()
    del cfg["raw"]["celeba"]["root"]
    with pytest.raises(InputError) as err:
        validate_config(cfg, SCHEMA)
    assert "raw.celeba" in str(err.value) and "'root' is a required property" in str(err.value)


def test_bad_enum_value_lists_choices():
    cfg = paper_config()
    cfg["prepared"]["mafl"]["preparer"] = "mafll"
    with pytest.raises(InputError) as err:
        validate_config(cfg, SCHEMA)
    assert "prepared.mafl.preparer: got 'mafll'" in str(err.value) and "'mafl'" in str(err.value)


def test_paper_dry_run_is_fast_and_prepares_every_dataset(tmp_path):
    # CPU seconds of the snakemake process (robust to a loaded machine, unlike wall time)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        SNAKEMAKE + ["-n", "--quiet", "rules", "--directory", str(tmp_path), "--snakefile", str(REPO / "Snakefile"),
                     "--configfile", str(REPO / "config" / "config.yaml")],
        capture_output=True, text=True, cwd=REPO,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    elapsed = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert out.returncode == 0, out.stderr
    assert elapsed < 5.0, f"dry run took {elapsed:.1f} CPU seconds"
    stores = paper_config()["prepared"]
    assert "prepare_dataset" in out.stdout
    counts = {line.split()[0]: int(line.split()[1]) for line in out.stdout.splitlines()
              if len(line.split()) == 2 and line.split()[1].isdigit()}
    assert counts["prepare_dataset"] == len(stores)


def test_lint_is_clean():
    out = subprocess.run(SNAKEMAKE + ["--lint", "--configfile", "config/demo.yaml"], capture_output=True,
                         text=True, cwd=REPO)
    assert "Congratulations" in out.stdout + out.stderr, out.stdout + out.stderr


def test_snakefile_never_imports_torch(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import sys, runpy\n"
        "sys.argv = ['snakemake', '-n', '--quiet', 'rules', '--snakefile', sys.argv[1], '--directory', sys.argv[2]]\n"
        "from snakemake.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('TORCH_IMPORTED' if 'torch' in sys.modules else 'NO_TORCH')\n"
    )
    out = subprocess.run([sys.executable, str(probe), str(REPO / "Snakefile"), str(tmp_path)],
                         capture_output=True, text=True, cwd=REPO)
    assert "NO_TORCH" in out.stdout, out.stdout + out.stderr
