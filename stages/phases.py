"""Where each training phase reads its base model and writes its adapter and merged model."""

PHASES = {
    "instruct": {"base": "models/base", "adapter": "models/adapters/instruct", "merged": "models/instruct"},
    "specialist": {"base": "models/instruct", "adapter": "models/adapters/specialist", "merged": "models/specialist"},
}
