"""Names of the perception net's parts that code outside it needs without importing torch (the command's parser checks them)."""

#: The perception net's tasks, one head each.
TASKS = ("regression", "presence", "light", "segmentation")
#: How the lead's gap is read (``perception.model.NetConfig.lead_head``).
LEAD_HEADS = ("fc", "ground", "ground-half")
#: The ground lead heads (a heat map over the decoder's features; ``perception.model.GroundLeadHead``).
GROUND_LEAD_HEADS = ("ground", "ground-half")
#: The heads the ground lead heads read from and write into.
GROUND_LEAD_TASKS = ("regression", "segmentation")
