"""The method: the contrast, the exits (heads, lens, dynamic, another model) and the model wrapper. Imports no other acd subpackage."""
