# Jupyter server settings for Binder (postBuild copies this file to ~/.jupyter/): the explorer
# app under Voila frees its kernel when its page is closed or reloaded, and kernels whose page
# went away without a word are culled (see mlhub_widgets/widgets/voila_app.py).
from mlhub_widgets.widgets.voila_app import KERNEL_CULLING, set_xsrf_cookie

c = get_config()  # type: ignore[name-defined]  # noqa: F821
c.VoilaConfiguration.prelaunch_hook = set_xsrf_cookie
for name, value in KERNEL_CULLING.items():
    setattr(c.MappingKernelManager, name, value)
