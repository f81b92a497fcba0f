"""Where each training phase reads its base model and writes its adapter and merged model."""

PHASES = {
    "instruct": {"base": "models/base", "adapter": "models/adapters/instruct", "merged": "models/instruct"},
    "specialist": {"base": "models/instruct", "adapter": "models/adapters/specialist", "merged": "models/specialist"},
}

# The models every evaluation scores, by name: stage 0, stage 1, final.
MODELS = {"base": "models/base", "instruct": PHASES["instruct"]["merged"], "specialist": PHASES["specialist"]["merged"]}
