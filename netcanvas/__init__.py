"""netcanvas: the command line that ties the graph compiler, runtime and designer together."""
