"""The label value that marks pixels to ignore: every dataset stores it, and the losses,
metrics and input pipeline skip it. No dependencies, so `jaxseg.losses` imports it cheaply."""

IGNORE_LABEL = 255
