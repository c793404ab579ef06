# The runtime keeps no tables of its own: desired and observed state live on instances.Instance.
