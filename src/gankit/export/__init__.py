"""Exported generators: a self-describing folder in the Hugging Face Hub layout (`gankit export`).

    folder.py   the folder's layout; reading one back (config.json validated, safetensors weights checked)
    hub.py      Hugging Face Hub repo ids: download (snapshot_download) and push (upload_folder)
    write.py    export_run: a run's generator -> the folder (and the Hub)
    card.py     the model card README.md, with a citations table
    graph.py    ONNX: the generator with a dynamic batch axis, checked with onnxruntime at export

Nothing is imported here: gankit.sampling reads exported folders through export.folder, which must not
pull in export.write (which samples through gankit.sampling).
"""
