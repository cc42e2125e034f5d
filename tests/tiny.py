"""Tiny params for every domain, in one place: the tests' stage runs, the site's fixture runs and the
end-to-end `dvc repro` tests all shrink a domain with these, so a tiny model is declared once.

Each entry is `{stage: params}` in the shape of `params.yaml`'s `<domain>.<stage>` sections.
"""
