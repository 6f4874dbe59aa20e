"""Every package that registers an artifact kind, imported so that `registry.artifact.load_artifact` can open it.

The registry knows artifact kinds only through `register_loader`; whoever loads an artifact (the facade, the
server, the monitor, export) imports this module first. Only light modules are imported here: each kind's
heavy libraries load inside its loader.
"""

from trainyard.lm import artifact as _language_models  # noqa: F401  "language-model"
from trainyard.lm import reward as _reward_models  # noqa: F401  "reward-model"
from trainyard.rag import index as _document_indexes  # noqa: F401  "rag-index"
from trainyard.rag import encoder as _text_encoders  # noqa: F401  "text-encoder"
from trainyard.rl import artifact as _rl_policies  # noqa: F401  "rl-policy"
