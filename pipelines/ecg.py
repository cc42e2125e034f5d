"""DVC stages of the ECG domain: `python -m latente.pipelines.ecg fetch|prepare|train|evaluate`."""
from latente.domains.ecg import DOMAIN
from latente.shared.stage import Stage, run_stage

STAGES = (
    Stage("fetch", "latente.domains.ecg.sources"),
    Stage("prepare", "latente.domains.ecg.data"),
    Stage("train", "latente.domains.ecg.training"),
    Stage("evaluate", "latente.domains.ecg.evaluation"),
)

if __name__ == "__main__":
    run_stage(DOMAIN, STAGES)
