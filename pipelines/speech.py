"""DVC stages of the speech domain: `python -m latente.pipelines.speech fetch|prepare|train|evaluate`."""
from latente.domains.speech import DOMAIN
from latente.shared.stage import Stage, run_stage

STAGES = (
    Stage("fetch", "latente.domains.speech.sources"),
    Stage("prepare", "latente.domains.speech.data"),
    Stage("train", "latente.domains.speech.training"),
    Stage("evaluate", "latente.domains.speech.evaluation"),
)

if __name__ == "__main__":
    run_stage(DOMAIN, STAGES)
