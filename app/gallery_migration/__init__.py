"""Moving a gallery to a new model pack: re-embed its stored crops beside the live index, then switch."""
