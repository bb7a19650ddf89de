"""Small real data sets bundled with dynrag (see NOTICE)."""
