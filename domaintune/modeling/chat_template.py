"""Tool-calling support for ChatML templates that lack it (SmolLM2's does).

The replacement renders every tool-free conversation byte-for-byte like the original
template (a test checks this through the real tokenizer), and adds the widely used
Hermes/Qwen convention for tools: schemas in the system turn, calls inside
``<tool_call>`` tags, results in a ``tool`` turn.
"""

from __future__ import annotations

CHATML_DEFAULT_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"

CHATML_WITH_TOOLS = (
    "{%- set default_system = '__DEFAULT_SYSTEM__' -%}"
    "{%- if messages[0]['role'] == 'system' -%}"
    "{%- set system = messages[0]['content'] -%}{%- set rest = messages[1:] -%}"
    "{%- else -%}{%- set system = default_system -%}{%- set rest = messages -%}{%- endif -%}"
    "{{- '<|im_start|>system\\n' + system -}}"
    "{%- if tools -%}"
    "{{- '\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\n"
    "You are provided with function signatures within <tools></tools> XML tags:\\n<tools>' -}}"
    "{%- for tool in tools -%}{{- '\\n' + (tool | tojson) -}}{%- endfor -%}"
    "{{- '\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments "
    "within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\"name\": <function-name>, "
    "\"arguments\": <args-json-object>}\\n</tool_call>' -}}"
    "{%- endif -%}"
    "{{- '<|im_end|>\\n' -}}"
    "{%- for message in rest -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' -}}"
    "{%- if message['content'] -%}{{- message['content'] -}}{%- endif -%}"
    "{%- if message.get('tool_calls') -%}"
    "{%- for call in message['tool_calls'] -%}"
    "{%- if message['content'] or not loop.first -%}{{- '\\n' -}}{%- endif -%}"
    "{{- '<tool_call>\\n{\"name\": \"' + call['function']['name'] + '\", \"arguments\": ' "
    "+ (call['function']['arguments'] | tojson) + '}\\n</tool_call>' -}}"
    "{%- endfor -%}"
    "{%- endif -%}"
    "{{- '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)


def with_tool_support(template: str | None) -> str | None:
    """Return a template that renders tools, or ``template`` unchanged when it already does
    or is not the plain ChatML one we know how to extend."""
    if not template or "tools" in template or "<|im_start|>" not in template:
        return template
    default_system = CHATML_DEFAULT_SYSTEM if CHATML_DEFAULT_SYSTEM in template else ""
    return CHATML_WITH_TOOLS.replace("__DEFAULT_SYSTEM__", default_system)
