"""The field app's logic without a screen: view models, form rules, reading checks, meter-test arithmetic.

Nothing here imports kivy; screens observe these objects (`Observable.subscribe`) and call their methods.
"""
