"""DVC stages of the protein domain: `python -m latente.pipelines.protein fetch|prepare|train|evaluate`."""
from latente.domains.protein import DOMAIN
from latente.shared.stage import Stage, run_stage

STAGES = (
    Stage("fetch", "latente.domains.protein.sources"),
    Stage("prepare", "latente.domains.protein.data"),
    Stage("train", "latente.domains.protein.training"),
    Stage("evaluate", "latente.domains.protein.evaluation"),
)

if __name__ == "__main__":
    run_stage(DOMAIN, STAGES)
