"""Policies behind HTTP: `POST /v1/act`.

    POST /v1/act {"observation": [0.01, -0.02, 0.03, 0.04]}                 -> {"action": 1, ...}
    POST /v1/act {"observations": [[...], [...]], "deterministic": false, "seed": 7}  -> {"actions": [...], ...}

Each observation is checked against the observation space saved with the policy (shape, real finite numbers,
bounds); a wrong one is answered 422 with the reason. The answer is the deterministic action (the most likely
one, or the Gaussian's mean) unless "deterministic" is false, then a sample (seeded when "seed" is given). The
serving app (`trainyard.serve.app`) hands the references that name policies to `add_policies`.
"""


import threading
from typing import Any

from trainyard.errors import ConfigError, DataError
from trainyard.registry.artifact import load_artifact, read_meta
from trainyard.rl.artifact import KIND


def is_policy(ws, ref: str) -> bool:
    return read_meta(ws.home / ws.store.resolve_model(ref)["artifact_path"]).get("kind") == KIND


def add_policies(app, ws, refs: list[str]) -> dict:
    """Load each policy (hashes verified) and add the /v1/act routes; returns {name: (policy, meta)}."""
    policies = {}
    for ref in refs:
        row = ws.store.resolve_model(ref)
        if row["name"] in policies:
            raise ConfigError(f"Policy '{row['name']}' is given twice.", "serve one reference per policy name.")
        policy, meta = load_artifact(ws.home / row["artifact_path"], row["meta_sha256"])
        policies[row["name"]] = (policy, {**meta, "version": row["version"]})
    if policies:
        add_act_routes(app, policies)
    return policies


def add_act_routes(app, policies: dict) -> None:
    import torch
    from fastapi import HTTPException
    from fastapi.responses import JSONResponse
    from pydantic import BaseModel, Field

    from trainyard.rl.spaces import check_observations

    lock = threading.Lock()  # one forward pass at a time: torch is single-threaded here

    class ActRequest(BaseModel):
        observation: Any = Field(None, description="One observation, shaped like the policy's observation space.")
        observations: Any = Field(None, description="Several observations (a batch), instead of `observation`.")
        model: str | None = Field(None, description="Which policy (needed only when several are served).")
        deterministic: bool = Field(True, description="The most likely action (or the mean); false: a sample.")
        seed: int | None = Field(None, description="Seed for a sampled action.")

    def pick(name: str | None):
        if name is None and len(policies) == 1:
            name = next(iter(policies))
        if name not in policies:
            raise HTTPException(404, f"no policy '{name}' is served here; served: {sorted(policies)}")
        return name, *policies[name]

    @app.post("/v1/act", summary="The action of a reinforcement-learning policy for an observation")
    def act(req: ActRequest):
        name, policy, meta = pick(req.model)
        batch = req.observations is not None
        if batch == (req.observation is not None):
            raise HTTPException(422, "send exactly one of 'observation' and 'observations'")
        try:
            obs = check_observations(req.observations if batch else req.observation, meta["spaces"], batch=batch)
        except DataError as exc:
            raise HTTPException(422, f"{exc.problem} Fix: {exc.fix}") from exc
        generator = torch.Generator().manual_seed(req.seed) if req.seed is not None else None
        with lock:
            actions = policy.act(obs, deterministic=req.deterministic, generator=generator).tolist()
        body = {"model": name, "version": meta["version"], "deterministic": req.deterministic}
        return JSONResponse({**body, "actions": actions} if batch else {**body, "action": actions[0]})

    @app.get("/v1/policies", summary="Served reinforcement-learning policies")
    def list_policies():
        return {"policies": [{"name": n, "version": m["version"], "algo": m["algo"], "env": m["env"], "spaces": m["spaces"],
                              "metrics": m.get("metrics")} for n, (_, m) in policies.items()]}
