"""Names of the perception net's parts that code outside it needs without importing torch (the command's parser checks them)."""

#: The perception net's tasks, one head each.
TASKS = ("regression", "presence", "light", "segmentation")
