"""DVC stages of the MRI domain: `python -m latente.pipelines.mri fetch|prepare|train|evaluate`."""
from latente.domains.mri import DOMAIN
from latente.shared.stage import Stage, run_stage

STAGES = (
    Stage("fetch", "latente.domains.mri.sources"),
    Stage("prepare", "latente.domains.mri.data"),
    Stage("train", "latente.domains.mri.training"),
    Stage("evaluate", "latente.domains.mri.evaluation"),
)

if __name__ == "__main__":
    run_stage(DOMAIN, STAGES)
