"""Provider, transport and processor plugins.

Each plugin's code lives in the repository's ``plugins/<name>/`` folder and is linked here as
``vision_agents/plugins/<name>`` so it imports as ``vision_agents.plugins.<name>``. A plugin's
third-party dependencies come with its extra, e.g. ``pip install "vision-agents[gemini]"``.
"""
