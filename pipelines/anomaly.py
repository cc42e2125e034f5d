"""DVC stages of the anomaly domain: `python -m latente.pipelines.anomaly fetch|prepare|train|evaluate`."""
from latente.domains.anomaly import DOMAIN
from latente.shared.stage import Stage, run_stage

STAGES = (
    Stage("fetch", "latente.domains.anomaly.sources"),
    Stage("prepare", "latente.domains.anomaly.data"),
    Stage("train", "latente.domains.anomaly.training"),
    Stage("evaluate", "latente.domains.anomaly.evaluation"),
)

if __name__ == "__main__":
    run_stage(DOMAIN, STAGES)
