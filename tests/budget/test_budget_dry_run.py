"""lead_hsr.budget.dry_run: the jobs of a `snakemake -n` listing."""
from lead_hsr.budget import dry_run as D

DRY_RUN = """Building DAG of jobs...
Job stats:
job       count
rule train_gan_hsr:
    input: a
    output: results/x/network.pt, results/x/options.json
    jobid: 3
    reason: Missing output files
    wildcards: gan_dataset=ffhq10k, aug=ada, plr=on, hsr=vit_dino, hsr_levels=all
    resources: tmpdir=<TBD>

localrule table:
    output: results/tables/t.md
    jobid: 0
"""


def test_parse_dry_run():
    jobs = D.parse_dry_run(DRY_RUN)
    assert [j.rule for j in jobs] == ["train_gan_hsr", "table"]
    assert jobs[0].wc == {"gan_dataset": "ffhq10k", "aug": "ada", "plr": "on", "hsr": "vit_dino",
                          "hsr_levels": "all"}
    assert jobs[0].output.startswith("results/x/network.pt")
    assert jobs[1].wc == {}
