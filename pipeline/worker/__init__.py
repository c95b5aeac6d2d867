"""The Faust worker: app wiring, runtime services, the Faust seam, sensor, fault hooks, pools."""
