"""The common action space: the PCA basis of action phrases (with appearance directions taken out), the placeholder
embeddings that live in it, and the action features (CLIP, pose) their coefficients are read from.

May import: `config`, `runs`, `model`."""
