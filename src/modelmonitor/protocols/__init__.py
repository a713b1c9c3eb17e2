"""What a model API speaks: OpenAI-compatible, KServe V1/V2 (Triton), MLflow, TorchServe,
TF Serving, BentoML; the model, version and task of a request; LLM tokens, time to
first token and cost from its bodies; and who called it.

- :mod:`.recognise`: protocol, route template, model, version and task from a path.
- :mod:`.llm`: tokens, TTFT, finish reason and cost from JSON answers and SSE streams.
- :mod:`.hooks`: the per-request body hooks a service starts.
- :mod:`.pricing`: the price table (bundled defaults, overridden in the config).
- :mod:`.consumers`: consumers from headers or hashed API keys; trusted proxies.
- :mod:`.awareness`: the above built once from the settings for every service.
- :mod:`.config`: their settings.

Import from the modules themselves: this package's ``__init__`` stays empty so that
:mod:`modelmonitor.settings` can use :mod:`.config` without importing the proxy.
"""
