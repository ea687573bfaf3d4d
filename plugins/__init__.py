"""medcodec integrations (installed as the ``medcodec_plugins`` package).

* :mod:`medcodec_plugins.sitk_hook`: ``.mlc`` support inside SimpleITK's own
  ``ReadImage``/``WriteImage``/``ImageFileReader``/``ImageFileWriter``/``ImageSeriesReader``/
  ``ImageSeriesWriter``, with :mod:`medcodec_plugins.sitk_series` (ITK's series geometry) and
  :mod:`medcodec_plugins.sitk_events` (``AddCommand`` events).
* :mod:`medcodec_plugins.autoload`: activates that hook when SimpleITK is first imported
  (run at interpreter start by the installed ``medcodec_sitk.pth`` / ``medcodec_sitk.start``).

Nothing here imports JAX, SimpleITK or numpy at import time.
"""
