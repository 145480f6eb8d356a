"""`llava-adapt recipe plan`: what a run will do and cost, before anything is spent.

Records and optimisation steps per stage, parameter counts per model part and per stage, an estimate of the peak GPU
memory per device, and the teacher's requests, tokens and cost; read from the recipe, the model's configs (the model is
built on the meta device: no weights are loaded) and what the run directory already holds. Only the CLI imports it.
"""
