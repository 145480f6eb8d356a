"""The web demo of `llava-adapt demo`: a Gradio page to chat with a model about an uploaded image, as LLaVA and
LLaVA-Med ship one.

The page has the image, a multi-turn chat whose answers stream token by token, temperature and max-token controls,
example images (`demo_page`) and the run's name and metrics. Every answer comes from `ChatSession`, the
conversation `llava-adapt chat` holds, so a greedy answer here is the one `chat` prints. The conversation is kept
per browser tab and starts again when the image changes.

One named API endpoint, `/chat`, takes `(image, message)` and returns the answer of a new conversation, with the
temperature and answer length the demo was started with (the page's own chat is the undocumented, streaming
`/converse`: image, message, the conversation shown, answer length, temperature):

    from gradio_client import Client, handle_file
    Client("http://127.0.0.1:7860/").predict(handle_file("scan.png"), "What modality is this?", api_name="/chat")

Gradio is an optional dependency (`pip install llava-adapt[demo]`); importing this module imports it. Gradio's
analytics and its version check are turned off, and the page uses the theme's bundled fonts, so neither the server
nor the page asks anything of another host.
"""

from __future__ import annotations

import os

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # before gradio is imported: it reads the variable then too

from collections.abc import Iterator  # noqa: E402
from typing import Any  # noqa: E402

import gradio as gr  # noqa: E402

from llava_adapt.evaluate.chat import ChatImageError, ChatSession, load_image  # noqa: E402
from llava_adapt.evaluate.demo_page import DemoPage  # noqa: E402
from llava_adapt.evaluate.resolve import ResolvedModel  # noqa: E402

# One model answers one request at a time: the chat and the /chat endpoint share this queue.
MODEL_QUEUE = "model"
MAX_NEW_TOKENS_LIMIT = 2048  # the slider's upper end


def build_demo(
    resolved: ResolvedModel, page: DemoPage, max_new_tokens: int = 256, temperature: float = 0.0
) -> gr.Blocks:
    """The demo app for one model; start it with `launch_demo` (or Gradio's own `launch`).

    Args:
        resolved (`ResolvedModel`): the model and processor (`resolve_model`).
        page (`DemoPage`): the title, description, metrics and examples (`demo_page`).
        max_new_tokens (`int`, defaults to `256`): answer length limit per turn: the slider's initial value, and the
            limit of `/chat`.
        temperature (`float`, defaults to `0.0`): 0 decodes greedily; the slider's initial value, and the
            temperature of `/chat`.
    """

    def session(image: str | None, messages: list[dict[str, Any]], tokens: float, temp: float) -> ChatSession:
        if not image:
            raise gr.Error("Upload an image first.")
        try:
            picture = load_image(image)
        except ChatImageError as exc:
            raise gr.Error(str(exc)) from None
        return ChatSession(resolved.model, resolved.processor, picture, int(tokens), float(temp), messages)

    def respond(
        image: str | None,
        text: str,
        chat: list[dict[str, Any]],
        messages: list[dict[str, Any]],
        tokens: float,
        temp: float,
    ) -> Iterator[tuple[list[dict[str, Any]], list[dict[str, Any]], str]]:
        text = (text or "").strip()
        if not text:
            yield chat, messages, ""
            return
        conversation = session(image, messages, tokens, temp)
        chat = [*chat, {"role": "user", "content": text}, {"role": "assistant", "content": ""}]
        for partial in conversation.stream(text):
            chat[-1] = {"role": "assistant", "content": partial}
            yield chat, messages, ""
        yield chat, conversation.messages, ""

    def chat_api(image: str | None, message: str) -> str:
        return session(image, [], max_new_tokens, temperature).ask(message)

    with gr.Blocks(title=f"{page.title} · llava-adapt", analytics_enabled=False) as demo:
        gr.Markdown(f"# {page.title}\n{page.description}")
        history = gr.State([])  # ChatSession.messages of this tab's conversation
        message = gr.Textbox(
            label="Question", placeholder="Ask about the image and press Enter", show_label=False, render=False
        )
        with gr.Row():
            with gr.Column(scale=2):
                image = gr.Image(type="filepath", image_mode=None, label="Image", sources=["upload", "clipboard"])
                temp_slider = gr.Slider(0.0, 1.5, value=temperature, step=0.05, label="Temperature (0 = greedy)")
                tokens_slider = gr.Slider(
                    1, max(MAX_NEW_TOKENS_LIMIT, max_new_tokens), value=max_new_tokens, step=1, label="Max new tokens"
                )
                if page.examples:
                    gr.Examples(
                        [[str(example.image), example.question] for example in page.examples],
                        inputs=[image, message],
                        label="Examples",
                    )
            with gr.Column(scale=3):
                chatbot = gr.Chatbot(label="Conversation", height=420, feedback_options=None)
                message.render()
                with gr.Row():
                    send = gr.Button("Send", variant="primary")
                    clear = gr.Button("Clear")
                if page.metrics:
                    with gr.Accordion("Evaluation results of this run", open=True):
                        gr.Markdown(page.metrics)
        with gr.Row(visible=False):  # the inputs and output of the /chat endpoint
            api_image = gr.Image(type="filepath", image_mode=None, label="image")
            api_message = gr.Textbox(label="message")
            api_answer = gr.Textbox(label="answer")
            api_button = gr.Button()

        inputs = [image, message, chatbot, history, tokens_slider, temp_slider]
        for trigger, name in ((message.submit, "converse"), (send.click, None)):
            trigger(
                respond, inputs, [chatbot, history, message], api_name=name,
                api_visibility="undocumented" if name else "private", concurrency_id=MODEL_QUEUE, concurrency_limit=1,
            )  # fmt: skip
        for trigger in (clear.click, image.change):
            trigger(lambda: ([], []), None, [chatbot, history], api_visibility="private")
        api_button.click(
            chat_api, [api_image, api_message], api_answer,
            api_name="chat", concurrency_id=MODEL_QUEUE, concurrency_limit=1,
            api_description="Answer a message about an image in a new conversation.",
        )  # fmt: skip
    return demo


def launch_demo(
    demo: gr.Blocks, page: DemoPage, host: str = "127.0.0.1", port: int | None = None, block: bool = True
) -> str:
    """Serve `demo`; returns its local URL.

    Args:
        demo (`gr.Blocks`): the app (`build_demo`).
        page (`DemoPage`): its page, whose example images are the only files outside Gradio's own the app serves.
        host (`str`, defaults to `"127.0.0.1"`): the address to listen on (`0.0.0.0` for every interface).
        port (`int`, *optional*): the port; defaults to the first free one from 7860.
        block (`bool`, defaults to `True`): serve until interrupted; with `False`, return once the server is up
            (stop it with `demo.close()`).
    """
    _, url, _ = demo.queue().launch(
        server_name=host,
        server_port=port,
        allowed_paths=[str(example.image) for example in page.examples],
        show_error=True,
        share=False,
        ssr_mode=False,
        mcp_server=False,
        footer_links=["api"],
        prevent_thread_lock=not block,
        quiet=not block,
    )
    return url
