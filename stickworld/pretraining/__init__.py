"""How the shipped networks are trained: the pretraining mixture and its batches, the base model's pretraining and
decoder fine-tune, the judges' and the CLIP's training. The top of the package: may import any other subpackage."""
